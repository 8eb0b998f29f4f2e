#!/usr/bin/env bash
# What nnU-Net's foreground oversampling (fcn train --foreground) does for a small structure (docs/results.md,
# "Small structures"): 240 synthetic 96 x 96 images (200 train, 40 val), each a large disc (class "large",
# radius 28) and, in every image ("every image") or in one image of ten ("1 in 10", a defect set), a small one
# of about 37 pixels (class "small", radius 3.5) at random places, in noise; a U-Net of depth 2 and width 8
# trained on random 24 x 24 crops for 20 epochs, without and with --foreground 0.33, for three seeds, then fcn
# eval on the val split: mean IU and each class's IoU.
# Usage: bash bench/foreground.sh BUILD_DIR [OUT_DIR]
set -euo pipefail
BUILD=${1:?usage: bench/foreground.sh BUILD_DIR [OUT_DIR]}
OUT=${2:-$(mktemp -d)}
FCN="$(cd "$BUILD" && pwd)/fcn"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT"
cd "$OUT"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
make_set() {  # FOLDER EVERY: the small disc in every EVERY-th image
rm -rf "$1"
/usr/bin/python3 - "$1" "$2" <<'PY'
import json, os, sys
import numpy as np
from PIL import Image

ds, every = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
for folder in ("images", "masks", "splits"):
    os.makedirs(f"{ds}/{folder}")
yy, xx = np.mgrid[:96, :96]
names = []
for i in range(240):
    image = rng.normal(0.3, 0.08, (96, 96))
    mask = np.zeros((96, 96), np.uint8)
    cy, cx = rng.integers(30, 66, 2)
    large = (yy - cy) ** 2 + (xx - cx) ** 2 < 28 ** 2
    image[large] += 0.25
    mask[large] = 1
    sy, sx = rng.integers(5, 91, 2)
    small = (yy - sy) ** 2 + (xx - sx) ** 2 < 3.5 ** 2
    if i % every == 0:
        image[small] = rng.normal(0.75, 0.08, small.sum())
        mask[small] = 2
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(f"{ds}/images/s{i:03d}.png")
    Image.fromarray(mask).save(f"{ds}/masks/s{i:03d}.png")
    names.append(f"s{i:03d}")
open(f"{ds}/splits/train.txt", "w").write("\n".join(names[:200]) + "\n")
open(f"{ds}/splits/val.txt", "w").write("\n".join(names[200:]) + "\n")
json.dump({"names": ["background", "large", "small"]}, open(f"{ds}/classes.json", "w"))
PY
}
make_set every 1
make_set tenth 10
for ds in every tenth; do
for seed in 0 1 2; do
  for share in 0 0.33; do
    /usr/bin/time -f "%e" -o time.txt "$FCN" train --data $ds --arch unet --depth 2 --base-channels 8 --crop 24 --foreground "$share" \
      --epochs 20 --batch 8 --optimizer adamw --lr 0.003 --seed "$seed" --out "$ds-$share-$seed.fcn" --overwrite --json > /dev/null
    "$FCN" eval "$ds-$share-$seed.fcn" --data $ds --json > eval.json
    /usr/bin/python3 -c "
import json
r = json.load(open('eval.json'))
c = r['per_class']
print('$ds  seed $seed  --foreground $share:  mean IU %.3f  large %.3f  small %.3f  (train %s s)' % (r['mean_iu'], c[1]['iou'], c[2]['iou'], open('time.txt').read().strip()))"
  done
done
done
