#!/usr/bin/env bash
# Issue 15's measurements on this machine's CPU class, in one command, so that a session on a class
# not measured yet (docs/benchmarks.md says which) records everything the targets ask for:
#   bash scripts/measure-class.sh [BUILD] [OUT]        (DEMO=1 also times make demo after the build)
# Writes OUT/{cpu.txt,tune.json,tune-train.json,fcn8s-500.json,unet-512.json,train-320.json,micro-1.json,micro-2.json,
# summary.md[,demo.log]}
# and prints summary.md: per workload and thread count, fcn's time, the fastest peer's and the ratio,
# beside the issue's target for this class. About 19 minutes on 2 AMX-class cores (30 with DEMO=1), plus ~2 for
# fcn_micro's per-layer rules.
# Nothing else may run meanwhile: the peers are timed in the same run, but a busy machine still
# moves every number.
set -euo pipefail
BUILD=${1:-build}
FCN="$BUILD/fcn"
OUT=${2:-out/measure-$(date -u +%Y%m%d-%H%M)}
[ -x "$FCN" ] || { echo "measure-class: $FCN is not built (make build, or pass the build folder)" >&2; exit 1; }
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }

step "CPU"
{
  grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs
  echo "flags: $(grep -o -w 'avx2\|fma\|avx512f\|avx512_bf16\|amx_tile\|amx_bf16' /proc/cpuinfo | sort -u | xargs)"
  echo "cpus: $(nproc); commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); date: $(date -u +%F)"
} | tee "$OUT/cpu.txt"

step "fcn tune: FCN-8s VGG16 500x500, 1 and 2 threads (cached for the benches below)"
"$FCN" tune --geometry reference --size 500 --threads 1,2 --json > "$OUT/tune.json"

step "fcn tune --mode train: the FCN-8s VGG16 train step at 320x320, 1 and 2 threads (cached for the bench below)"
"$FCN" tune --geometry reference --size 320 --mode train --threads 1,2 --json > "$OUT/tune-train.json"

bench() {  # NAME ARGS...
  local name=$1
  shift
  step "fcn bench $* --peers --threads 1,2 --runs 3"
  "$FCN" bench "$@" --peers --threads 1,2 --runs 3 --json > "$OUT/$name.json"
}
bench fcn8s-500 --geometry reference --size 500
bench unet-512 --arch unet --size 512
bench train-320 --geometry reference --size 320 --mode train

# The per-layer rules' measurements (docs/benchmarks.md, "Small maps", "Short products", "Short products in
# training"): direct / Winograd / im2col + sgemm on small maps, and short products' training step, at 1 and 2
# threads. Where the rules' thresholds (16 Winograd tiles without AVX-512, 64 with; sgemm below 256 pixels) are
# wrong for this class, these rows show it. Skipped in a build without the benchmarks (-DFCN_BUILD_BENCH=ON).
if [ -x "$BUILD/bench/fcn_micro" ]; then
  for threads in 1 2; do
    step "fcn_micro per-layer rules, $threads thread(s)"
    OMP_NUM_THREADS=$threads "$BUILD/bench/fcn_micro" --benchmark_filter='SmallMaps/(256|512|1024)/(4|8|16)/(1|4)/|ShortProductTrain' \
      --benchmark_min_time=0.2 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
      --benchmark_out="$OUT/micro-$threads.json" --benchmark_out_format=json | grep median || true
  done
fi

if [ "${DEMO:-0}" = 1 ]; then
  step "make demo (timed after the build)"
  start=$(date +%s)
  make demo > "$OUT/demo.log" 2>&1
  echo "make demo: $(( $(date +%s) - start )) s" | tee -a "$OUT/cpu.txt"
fi

/usr/bin/python3 - "$OUT" <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out = sys.argv[1]
# The class as fcn saw it (bench's "isa"), so a run held to AVX2 (FCN_CPU_FLAGS, the AVX2 proxy) is judged as one.
isa = json.load(open(os.path.join(out, "fcn8s-500.json")))["isa"]
avx512 = isa != "avx2"
targets = {"fcn8s-500": 0.85 if avx512 else 0.95, "unet-512": 0.95, "train-320": 0.95}
held = " (held there by FCN_CPU_FLAGS: an AVX2 proxy)" if os.environ.get("FCN_CPU_FLAGS") else ""
print(f"# {open(os.path.join(out, 'cpu.txt')).readline().strip()}: ISA class {isa}{held}\n")
print("| workload | threads | fcn ms | fastest peer | peer ms | fcn / peer | target | path |")
print("|---|---|---:|---|---:|---:|---:|---|")
for name, target in targets.items():
    d = json.load(open(os.path.join(out, name + ".json")))
    # FCN-8s inference: the fastest peer of all; U-Net and training: PyTorch with tuned malloc (the issue's).
    peers = d["peers"] if name == "fcn8s-500" else {k: v for k, v in d["peers"].items() if k == "pytorch_tuned_malloc"}
    for run in d["runs"]:
        t = str(run["threads"])
        timed = {k: v["by_threads"][t] for k, v in peers.items() if t in v.get("by_threads", {})}
        if not timed:
            continue
        best = min(timed, key=timed.get)
        ratio = run["ms_per_image"] / timed[best]
        print(f"| {name} | {t} | {run['ms_per_image']:.0f} | {best} | {timed[best]:.0f} | {ratio:.2f} "
              f"{'(met)' if ratio <= target else '(missed)'} | {target} | {run['path_text']} |")
d = json.load(open(os.path.join(out, "fcn8s-500.json")))
print(f"\nFCN-8s 500²: {100 * d['fraction_of_conv_peak']:.0f}% of the conv peak ({d['conv_gflops_per_s']:.0f} GFLOP/s), "
      f"peak memory fcn {d['peak_rss_mib']:.0f} MiB vs PyTorch {d['peers'].get('pytorch', {}).get('peak_rss_mib', float('nan')):.0f}")
EOF
