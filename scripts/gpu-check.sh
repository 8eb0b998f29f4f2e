#!/usr/bin/env bash
# fcn on a CUDA machine: build against the LibTorch inside a pip PyTorch, run the CUDA tests
# (tests/infer/cuda_test.cpp: the GPU's logits, masks and training step against the CPU's) and
# time FCN-8s, U-Net and a training step on the GPU beside PyTorch-Python on the same GPU.
#
#   bash scripts/gpu-check.sh [BUILD_DIR] [OUT_DIR]      (default build-cuda, gpu-out)
#
# PYTHON: the interpreter whose torch has CUDA (default python3). FCN_DEPS_PREFIX: a CMake prefix
# with what the machine lacks of nlohmann-json, CLI11, GoogleTest and libpng (headers, libraries,
# CMake configs laid out as under /usr); its lib/x86_64-linux-gnu goes on LD_LIBRARY_PATH.
# OUT_DIR gets at most 8 files: env.txt, build.log, tests.txt, bench-*.json (4), backtrace.txt.
# A pip wheel's LibTorch ships no Gloo headers, so that build trains in one process only.
set -uo pipefail
build=${1:-build-cuda}
out=${2:-gpu-out}
py=${PYTHON:-python3}
mkdir -p "$out"
start=$(date +%s)
say() { echo "[$(($(date +%s) - start)) s] $*"; }
if [ -n "${FCN_DEPS_PREFIX:-}" ]; then export LD_LIBRARY_PATH="$FCN_DEPS_PREFIX/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"; fi

{
  nvidia-smi -L
  grep -m1 'model name' /proc/cpuinfo
  echo "cores: $(nproc)"
  "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.get_device_name(0))'
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

torch_prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)') || { echo "$py has no torch"; exit 1; }
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DFCN_WITH_OPENCV=OFF \
  -DCMAKE_PREFIX_PATH="$torch_prefix;${FCN_DEPS_PREFIX:-}" -DFCN_PYTHON="$(command -v "$py")" > "$out/build.log" 2>&1 ||
  { tail -30 "$out/build.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target fcn_cli fcn_tests >> "$out/build.log" 2>&1
build_rc=$?
say "build rc $build_rc"
grep -E "error|FAILED|undefined reference" "$out/build.log" | head -40
[ -x "$build/fcn" ] || exit 2
fcn=$(cd "$build" && pwd)/fcn

if [ -x "$build/tests/fcn_tests" ]; then
  "$build/tests/fcn_tests" --gtest_filter='Cuda.*:ExplicitPadding.*:FastPath.*' > "$out/tests.txt" 2>&1
  say "tests rc $?"
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |tests ran" "$out/tests.txt"
fi

# One fcn bench run as JSON; on a crash, the same run again under a debugger for the backtrace.
bench() {
  local name=$1
  shift
  XDG_CACHE_HOME=/tmp/fcn-gpu-check timeout 300 "$fcn" bench --device cuda --threads "$(nproc)" --json "$@" > "$out/bench-$name.json" 2> /tmp/fcn-gpu-check.err
  local rc=$?
  say "bench $name rc $rc"
  tail -3 /tmp/fcn-gpu-check.err
  if [ $rc -ge 128 ] && [ ! -s "$out/backtrace.txt" ]; then
    local debugger
    debugger=$(command -v gdb || command -v cuda-gdb)
    [ -n "$debugger" ] && timeout 300 "$debugger" -q -batch -ex run -ex bt -ex "info threads" --args "$fcn" bench --device cuda \
      --threads "$(nproc)" --json "$@" > "$out/backtrace.txt" 2>&1
  fi
  "$py" - "$out/bench-$name.json" << 'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    sys.exit()
peers = {k: "%.2f ms (fcn x%.2f)" % (v["ms_per_image"], v["ratio"]) for k, v in r["peers"].items()}
print("  %s %s %s %s: %.2f ms/image, %.0f GFLOP/s (%.0f%% of the conv probe); %s" % (
    r["model"], r["mode"], r["dtype"], r["size"], r["ms_per_image"], r["gflops_per_s"], 100 * r["fraction_of_conv_peak"], peers))
EOF
}
bench fcn8s --geometry reference --size 500 --runs 20 --peers
bench fcn8s-bf16 --geometry reference --size 500 --runs 20 --dtype bf16
bench train --geometry reference --size 320 --runs 10 --mode train --peers
bench unet --arch unet --size 512 --classes 2 --runs 20 --peers
say "all done"
