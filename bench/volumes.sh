#!/usr/bin/env bash
# Time and peak memory of the volume commands on one liver-sized CT case (docs/benchmarks.md, "Scoring label
# volumes"): a synthetic 512 x 512 x 300 uint8 pair at 0.8 x 0.8 x 2.5 mm (an ellipsoid of 17.0 L with a
# tumour of 84 mL in it; the "prediction" a little larger, plus an island 100 slices away), written as plain
# .nii, then
#   fcn eval --predictions P --truth T                        (Dice, NSD, HD95, mL)
#   fcn predict NET CASE [--largest all --instances]          (a tiny U-Net: what is measured is the volume path)
#   fcn data unstack IMAGES --masks LABELS
# each run twice (the first touches fresh memory: on a VM that costs much of it), /usr/bin/time's wall time and
# peak RSS of the second printed.
# Usage: bash bench/volumes.sh BUILD_DIR [OUT_DIR]
set -euo pipefail
BUILD=${1:?usage: bench/volumes.sh BUILD_DIR [OUT_DIR]}
OUT=${2:-$(mktemp -d)}
FCN="$(cd "$BUILD" && pwd)/fcn"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT/truth" "$OUT/pred" "$OUT/images" "$OUT/labels"
cd "$OUT"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
     "ISA: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|amx_bf16)$' | tr '\n' ' ')"
echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
/usr/bin/python3 - <<'PY'
import struct
import numpy as np

def nifti(volume):  # NIfTI-1 by nifti1.h: uint8 voxels (z, y, x) at 352, 0.8 x 0.8 x 2.5 mm
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, volume.shape[2], volume.shape[1], volume.shape[0], 1, 1, 1, 1)
    struct.pack_into("<hh", header, 70, 2, 8)
    struct.pack_into("<8f", header, 76, 1, 0.8, 0.8, 2.5, 1, 1, 1, 1)
    struct.pack_into("<f", header, 108, 352)
    header[123] = 2  # mm
    header[344:348] = b"n+1\0"
    return bytes(header) + volume.tobytes()

z, y, x = np.ogrid[:300, :512, :512]
ball = lambda cz, cy, cx, rz, ry, rx: ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1
truth = np.zeros((300, 512, 512), np.uint8)
truth[ball(150, 256, 230, 100, 150, 170)] = 1
truth[ball(160, 250, 240, 20, 25, 25)] = 2
pred = truth.copy()
pred[ball(150, 259, 230, 103, 148, 172)] = 1
pred[ball(161, 250, 241, 21, 24, 25)] = 2
pred[10:14, 20:30, 20:30] = 1
open("truth/liver.nii", "wb").write(nifti(truth))
open("pred/liver-labels.nii", "wb").write(nifti(pred))
open("images/liver.nii", "wb").write(nifti(truth))  # the "scan" to segment and unstack
open("labels/liver.nii", "wb").write(nifti(pred))
PY
"$FCN" init --arch unet --depth 1 --base-channels 4 --in-channels 1 --classes 3 --out net.fcn > /dev/null
measure() {  # NAME COMMAND...: the second run's seconds and peak RSS
  local name="$1"; shift
  rm -rf out; "$@" > /dev/null 2>&1
  rm -rf out; /usr/bin/time -f "%e %M" -o time.txt "$@" > /dev/null 2>&1
  read -r seconds kb < time.txt
  printf '%-52s %7.2f s %7d MiB\n' "$name" "$seconds" $((kb / 1024))
}
measure "eval --predictions pred --truth truth" "$FCN" eval --predictions pred --truth truth
measure "predict net.fcn images/liver.nii" "$FCN" predict net.fcn images/liver.nii --out out --quiet
measure "predict ... --largest all --instances" "$FCN" predict net.fcn images/liver.nii --largest all --instances --out out --quiet
measure "data unstack images --masks labels" "$FCN" data unstack images --masks labels --out out
