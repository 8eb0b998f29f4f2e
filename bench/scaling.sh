#!/usr/bin/env bash
# Data-parallel training and the loader on this machine (docs/benchmarks.md, "Scaling out"):
#  1. fcn bench --mode train --nproc 2 vs one process with every core: images/s, scaling efficiency,
#     the gradient all-reduce's share of a step;
#  2. the data-wait share of fcn train with --workers 0, 1, 2 on JPEG data.
# Usage: bash bench/scaling.sh BUILD_DIR [OUT_DIR]
set -euo pipefail
BUILD=${1:?usage: bench/scaling.sh BUILD_DIR [OUT_DIR]}
OUT=${2:-$(mktemp -d)}
FCN="$BUILD/fcn"
mkdir -p "$OUT"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
     "ISA: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|amx_bf16)$' | tr '\n' ' ')"
echo "commit: $(git -C "$(dirname "$0")/.." rev-parse --short HEAD)"

for net in "--arch unet --depth 4 --base-channels 16 --size 128 --batch 8" \
           "--arch fcn8s --backbone vgg16-w0.25 --size 128 --batch 8"; do
  # shellcheck disable=SC2086
  "$FCN" bench $net --mode train --nproc 2 --runs 5 --warmup 1 --json > "$OUT/bench.json"
  /usr/bin/python3 - "$OUT/bench.json" "$net" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
d = r["data_parallel"]
best = max(r["runs"], key=lambda run: run["images_per_s"])
print(f"{sys.argv[2]}: 1 process x {best['threads']} threads {d['one_process_images_per_s']:.2f} images/s; "
      f"{d['nproc']} ranks x {d['threads_per_rank']} thread(s) {d['images_per_s']:.2f} images/s; "
      f"scaling efficiency {d['scaling_efficiency']:.2f}; all-reduce {d['all_reduce_ms_per_batch']:.1f} of "
      f"{d['ms_per_batch']:.1f} ms per batch")
EOF
done

# JPEG scenes (256 px): decoding and augmenting them is real work for the loader.
"$FCN" data fashion-scenes --out "$OUT/scenes" --train 96 --val 4 --size 256 > /dev/null
/usr/bin/python3 - "$OUT/scenes" <<'EOF'
import os, sys
from torchvision.io import decode_image, encode_jpeg, read_file
root = os.path.join(sys.argv[1], "JPEGImages")
for name in os.listdir(root):
    png = os.path.join(root, name)
    image = decode_image(read_file(png))
    with open(png[:-4] + ".jpg", "wb") as f:
        f.write(encode_jpeg(image, quality=90).numpy().tobytes())
    os.remove(png)
EOF
for workers in 0 1 2 0 1 2; do  # twice each: epochs vary ~10% from run to run here
  "$FCN" train --data "$OUT/scenes" --arch unet --depth 3 --base-channels 8 --epochs 1 --batch 8 \
         --flip --scale-min 0.75 --scale-max 1.25 --crop 192 --elastic alpha=10,grid=3 --rotate 10 \
         --workers "$workers" --out "$OUT/w$workers.fcn" --overwrite --json > /dev/null
  /usr/bin/python3 - "$OUT/w$workers.run/metrics.jsonl" "$workers" <<'EOF'
import json, sys
line = json.loads(open(sys.argv[1]).readline())
print(f"--workers {sys.argv[2]}: epoch {line['epoch_seconds']:.1f} s, data wait {line['data_wait_seconds']:.1f} s "
      f"({100 * line['data_wait_seconds'] / line['epoch_seconds']:.0f}%)")
EOF
done
