#!/usr/bin/env bash
# Runs every fuzzer for SECONDS on its seed corpus (make_corpus.py), JOBS at a time, and prints the
# executions per parser (also into BUILD_DIR/fuzz-summary.txt). Usage: fuzz/run.sh BUILD_DIR
# [SECONDS [JOBS]]. A crash, sanitizer report, uncaught non-fcn exception, out-of-memory or
# timeout stops that fuzzer, leaves the input in BUILD_DIR/artifacts/ and makes this script fail.
# The corpus grows in BUILD_DIR/corpus/ from run to run.
set -euo pipefail
build=$(cd "$1" && pwd)
seconds=${2:-60}
jobs=${3:-2}
here=$(cd "$(dirname "$0")" && pwd)
parsers=(png npy pickle archive safetensors model_json classes idx split tiff nifti)
mkdir -p "$build/seeds" "$build/corpus" "$build/artifacts"
/usr/bin/python3 "$here/make_corpus.py" "$build/seeds"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1

run_one() {
  local build=$1 seconds=$2 name=$3 log="$1/fuzz_$3.log"
  mkdir -p "$build/corpus/$name"
  if "$build/fuzz_$name" "$build/corpus/$name" "$build/seeds/$name" -max_total_time="$seconds" -rss_limit_mb=2048 \
       -timeout=10 -max_len=65536 -artifact_prefix="$build/artifacts/$name-" -print_final_stats=1 > "$log" 2>&1; then
    echo ok > "$build/fuzz_$name.status"
  else
    echo "FOUND A PROBLEM (see $log)" > "$build/fuzz_$name.status"
  fi
}
export -f run_one
printf '%s\n' "${parsers[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ "$build" "$seconds" {}

{
  echo "fuzzing $(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'), $seconds s per parser, $jobs at a time"
  printf '%-12s %12s %8s %10s %8s  %s\n' parser executions seconds exec/s corpus result
  for name in "${parsers[@]}"; do
    log="$build/fuzz_$name.log"
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    corpus=$(find "$build/corpus/$name" -type f | wc -l)
    result=$(cat "$build/fuzz_$name.status")
    printf '%-12s %12s %8s %10s %8s  %s\n' "$name" "$runs" "$seconds" "$((runs / seconds))" "$corpus" "$result"
  done
} | tee "$build/fuzz-summary.txt"
# The status is read here, not in the block above: a pipeline's parts run in subshells, so a status
# set there was lost and this script passed whatever the fuzzers found.
status=0
for name in "${parsers[@]}"; do
  if [ "$(cat "$build/fuzz_$name.status")" != ok ]; then
    status=1
    echo "fuzz_$name:" >&2
    grep -E "ERROR|SUMMARY|deadly|uncaught|what\(\)|Test unit written" "$build/fuzz_$name.log" | head -6 >&2 || true
  fi
done
exit $status
