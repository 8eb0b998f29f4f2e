#!/usr/bin/env bash
# Installs every Debian package fcn needs to build, test, benchmark and run the demo.
# Idempotent; run as root (or via sudo). Debian's archive, plus one npm package for the benchmark
# peers: ONNX Runtime's CPU runtime (onnxruntime-node, pinned in bench/peers/package-lock.json).
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libtorch-dev            # tensors, autograd, oneDNN, optimisers
  libopenblas-dev         # LibTorch's BLAS; the reference BLAS is ~30x slower (docs/machines.md)
  libopencv-dev           # image I/O, resize, colour, drawing, video, and the DNN peer for ONNX parity
  libavutil-dev           # FFmpeg's log, so that video decoding errors reach fcn (formats/video.cpp)
  libtiff-dev             # libtiff's error handler, so that a corrupt TIFF is an error (formats/image.cpp)
  libpng-dev zlib1g-dev   # masks as stored (palette indices) and the gzipped Fashion-MNIST files
  libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libdnnl-dev             # oneDNN (the one LibTorch loads): Winograd 3x3 convs on AVX-512 (models/winograd.h)
  libgloo-dev             # c10d ProcessGroupGloo for multi-process CPU training
  python3-torch python3-torchvision python3-numpy   # oracles and peers in tests/bench only
  dataset-fashion-mnist   # the built-in real data
  chromium                # headless: the test that fcn report's HTML renders
  clang libclang-rt-14-dev   # libFuzzer + ASan/UBSan for `make fuzz` (fuzz/)
  nodejs                  # runs ONNX Runtime, a peer in fcn bench --peers and the ONNX parity tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's nodejs comes without npm (NodeSource's carries it).
command -v npm >/dev/null || $SUDO apt-get install -y -q --no-install-recommends npm

# ONNX Runtime for node, CPU runtime only: --ignore-scripts skips its installer, which fetches GPU
# parts (and fails offline). Into bench/peers/node_modules (git-ignored), once.
peers="$(cd "$(dirname "$0")/../bench/peers" && pwd)"
if [ -f "$peers/node_modules/onnxruntime-node/package.json" ]; then
  echo "install-deps: onnxruntime-node present"
else
  echo "install-deps: installing onnxruntime-node into $peers/node_modules"
  (cd "$peers" && npm ci --ignore-scripts --no-audit --no-fund) ||
    echo "install-deps: warning: npm could not install onnxruntime-node; fcn bench --peers and the parity tests skip ONNX Runtime"
fi
