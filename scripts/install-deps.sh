#!/usr/bin/env bash
# Installs every Debian package fcn needs to build, test, benchmark and run the demo.
# Idempotent; run as root (or via sudo). Nothing is downloaded outside Debian's archive.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libtorch-dev            # tensors, autograd, oneDNN, optimisers
  libopenblas-dev         # LibTorch's BLAS; the reference BLAS is ~30x slower (docs/machines.md)
  libopencv-dev           # image I/O, resize, colour, drawing, and the DNN peer for ONNX parity
  libpng-dev zlib1g-dev   # masks as stored (palette indices) and the gzipped Fashion-MNIST files
  libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libgloo-dev             # c10d ProcessGroupGloo for multi-process CPU training
  python3-torch python3-torchvision python3-numpy   # oracles and peers in tests/bench only
  dataset-fashion-mnist   # the built-in real data
  chromium                # headless: the test that fcn report's HTML renders
  clang libclang-rt-14-dev   # libFuzzer + ASan/UBSan for `make fuzz` (fuzz/)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
