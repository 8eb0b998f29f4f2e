#!/usr/bin/env bash
# The main job, end to end on real images: Fashion-MNIST scenes -> pretrain a classifier ->
# convolutionalize -> FCN-32s (from the classifier) -> FCN-16s -> FCN-8s (staged, as in the
# paper) -> evaluate each, plus FCN-32s from random weights at the same budget -> docs/results.md.
# About 10 minutes on a 2-core CPU. EPOCHS=N and SCENES=N make it longer or shorter.
set -euo pipefail
BUILD=${1:-build}
FCN="$BUILD/fcn"
OUT=${DEMO_OUT:-out/demo}
EPOCHS=${EPOCHS:-5}
TRAIN_SCENES=${SCENES:-2000}
RESULTS=${RESULTS:-docs/results.md}
mkdir -p "$OUT" "$(dirname "$RESULTS")"
step() { printf '\n== %s\n' "$*"; }
start=$(date +%s)

step "Fashion-MNIST scenes: $TRAIN_SCENES train (train split) + 300 val (t10k split), 64x64"
"$FCN" data fashion-scenes --out "$OUT/scenes" --train "$TRAIN_SCENES" --val 300 --size 64 --seed 0
"$FCN" data check "$OUT/scenes" | tail -3

step "Pretrain the transfer source: a quarter-width VGG16 classifier on the 60000 Fashion-MNIST images"
"$FCN" pretrain --data fashion-mnist --out "$OUT/classifier.fcn" --epochs 1 --lr 6e-4 --seed 0

step "Convolutionalize it: fc layers become convolutions, the classifier becomes a heatmap net"
"$FCN" convolutionalize "$OUT/classifier.fcn" --out "$OUT/classifier-conv.fcn"
"$FCN" forward "$OUT/classifier-conv.fcn" --input "$OUT/scenes/JPEGImages/val_00000.png" --output "$OUT/heatmap.npy"

train=(--data "$OUT/scenes" --epochs "$EPOCHS" --batch 8 --lr 1e-3 --optimizer adamw --weight-decay 1e-4 --seed 0)
step "FCN-32s from the classifier ($EPOCHS epochs)"
"$FCN" train "${train[@]}" --arch fcn32s --init "$OUT/classifier.fcn" --out "$OUT/fcn32s.fcn"
step "FCN-16s from FCN-32s (score_pool4 starts at zero: the same logits at first)"
"$FCN" train "${train[@]}" --arch fcn16s --from "$OUT/fcn32s.fcn" --out "$OUT/fcn16s.fcn"
step "FCN-8s from FCN-16s"
"$FCN" train "${train[@]}" --arch fcn8s --from "$OUT/fcn16s.fcn" --out "$OUT/fcn8s.fcn"
step "Control: FCN-32s from random weights, same epochs"
"$FCN" train "${train[@]}" --arch fcn32s --out "$OUT/fcn32s-random.fcn"

step "Evaluate on the val scenes"
"$FCN" eval "$OUT/fcn32s-random.fcn" "$OUT/fcn32s.fcn" "$OUT/fcn16s.fcn" "$OUT/fcn8s.fcn" --data "$OUT/scenes" --markdown "$OUT/table.md"
"$FCN" eval "$OUT/fcn8s.fcn" --data "$OUT/scenes" --json > "$OUT/fcn8s-eval.json"

{
  echo "# Results: FCN-32s / 16s / 8s on Fashion-MNIST scenes"
  echo
  echo "Written by \`make demo\` ($(date -u +%Y-%m-%d), $(nproc) CPU cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))."
  echo "Validation: 300 scenes composed from the Fashion-MNIST t10k split (training scenes use only the train split)."
  echo "Metrics as in the FCN paper (section 5); classes absent from both ground truth and prediction are left out of the means."
  echo
  cat "$OUT/table.md"
  echo
  echo "Staged training as in the paper: FCN-16s starts from FCN-32s and FCN-8s from FCN-16s, each new skip at zero."
  echo "\"init random\" is the control for transfer learning: the same net and epochs without the pretrained classifier."
  echo "Train time is per stage, so FCN-8s has seen 3x the epochs of either FCN-32s (as in the paper's staged schedule)."
  echo
  echo "## Commands (seed 0 everywhere)"
  echo '```'
  echo "fcn data fashion-scenes --out scenes --train $TRAIN_SCENES --val 300 --size 64 --seed 0"
  echo "fcn pretrain --data fashion-mnist --out classifier.fcn --epochs 1 --lr 6e-4 --seed 0"
  echo "common='--data scenes --epochs $EPOCHS --batch 8 --lr 1e-3 --optimizer adamw --weight-decay 1e-4 --seed 0'"
  echo "fcn train \$common --arch fcn32s --init classifier.fcn --out fcn32s.fcn"
  echo "fcn train \$common --arch fcn16s --from fcn32s.fcn --out fcn16s.fcn"
  echo "fcn train \$common --arch fcn8s --from fcn16s.fcn --out fcn8s.fcn"
  echo "fcn train \$common --arch fcn32s --out fcn32s-random.fcn"
  echo "fcn eval fcn32s-random.fcn fcn32s.fcn fcn16s.fcn fcn8s.fcn --data scenes"
  echo '```'
} > "$RESULTS"
step "Wrote $RESULTS in $(( $(date +%s) - start )) s"
cat "$RESULTS" | sed -n '6,12p'
