#!/usr/bin/env bash
# fcn as a C++ package: `cmake --install` into a scratch prefix, then examples/ built out of tree
# with find_package(fcn) against that prefix, run on an image, and compared with what the installed
# `fcn predict` writes for the same model and image.
#   consumer_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1" source="$2"
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix/usr" >"$prefix/install.log"
test -f "$prefix/usr/lib/cmake/fcn/fcnConfig.cmake" -a -f "$prefix/usr/lib/cmake/fcn/fcnConfigVersion.cmake"
test -f "$prefix/usr/include/fcn/infer/predictor.h"
fcn="$prefix/usr/bin/fcn"
"$fcn" --help >/dev/null  # the installed CLI finds the installed libfcn (RPATH)

cmake -S "$source/examples" -B "$prefix/consumer" -DCMAKE_PREFIX_PATH="$prefix/usr" -DCMAKE_BUILD_TYPE=Release >"$prefix/configure.log"
cmake --build "$prefix/consumer" -j2 >"$prefix/build.log" || { cat "$prefix/build.log"; exit 1; }

"$fcn" data fashion-scenes --out "$prefix/scenes" --train 1 --val 1 --size 32 >/dev/null
"$fcn" init --arch fcn8s --backbone vgg16-w0.0625 --fc-channels 8 --in-channels 1 --classes 11 --out "$prefix/m.fcn" >/dev/null
image="$prefix/scenes/JPEGImages/val_00000.png"
"$prefix/consumer/segment_example" "$prefix/m.fcn" "$image" "$prefix/example" >"$prefix/example.txt"
grep -q "segmented in" "$prefix/example.txt"
"$fcn" predict "$prefix/m.fcn" "$image" --out "$prefix/predicted" --quiet >/dev/null
cmp "$prefix/example-labels.png" "$prefix/predicted/val_00000.png"
echo "install_consumer: installed, built examples/ with find_package(fcn), same labels as fcn predict"
