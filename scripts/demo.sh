#!/usr/bin/env bash
# The main job, end to end on real images: Fashion-MNIST scenes -> pretrain a classifier ->
# convolutionalize -> FCN-32s (from the classifier) -> FCN-16s -> FCN-8s (staged, as in the
# paper) -> evaluate each, plus FCN-32s from random weights at the same budget -> docs/results.md.
# About 4-6 minutes on a 2-core CPU (README: per CPU class). EPOCHS=N and SCENES=N make it longer or shorter.
set -euo pipefail
BUILD=${1:-build}
FCN="$BUILD/fcn"
OUT=${DEMO_OUT:-out/demo}
EPOCHS=${EPOCHS:-5}
TRAIN_SCENES=${SCENES:-2000}
RESULTS=${RESULTS:-docs/results.md}
PICTURES=${PICTURES:-docs/pictures}
HEATMAP_CLASS=${HEATMAP_CLASS:-Trouser}
mkdir -p "$OUT" "$(dirname "$RESULTS")" "$PICTURES"
step() { printf '\n== %s\n' "$*"; }
start=$(date +%s)

step "Fashion-MNIST scenes: $TRAIN_SCENES train (train split) + 300 val (t10k split), 64x64"
"$FCN" data fashion-scenes --out "$OUT/scenes" --train "$TRAIN_SCENES" --val 300 --size 64 --seed 0
"$FCN" data check "$OUT/scenes" | tail -3

step "Pretrain the transfer source: a quarter-width VGG16 classifier on the 60000 Fashion-MNIST images"
# --tune: the first run on a machine times the classifier's training path and caches it (as the stages below).
"$FCN" pretrain --data fashion-mnist --out "$OUT/classifier.fcn" --epochs 1 --lr 6e-4 --seed 0 --tune

step "Convolutionalize it: fc layers become convolutions, the classifier becomes a heatmap net"
"$FCN" convolutionalize "$OUT/classifier.fcn" --out "$OUT/classifier-conv.fcn"
"$FCN" data fashion-scenes --out "$OUT/big-scenes" --train 1 --val 1 --size 160 --seed 3
"$FCN" heatmap "$OUT/classifier.fcn" "$OUT/big-scenes/JPEGImages/val_00000.png" --class "$HEATMAP_CLASS" \
  --out "$PICTURES/heatmap.png" --npy "$OUT/heatmap.npy"

# --tune: each stage's first run on a machine times its training path (layout, Winograd or direct) and caches it.
train=(--data "$OUT/scenes" --epochs "$EPOCHS" --batch 8 --lr 1e-3 --optimizer adamw --weight-decay 1e-4 --seed 0 --overwrite --tune)
step "FCN-32s from the classifier ($EPOCHS epochs)"
"$FCN" train "${train[@]}" --arch fcn32s --init "$OUT/classifier.fcn" --out "$OUT/fcn32s.fcn"
step "FCN-16s from FCN-32s (score_pool4 starts at zero: the same logits at first)"
"$FCN" train "${train[@]}" --arch fcn16s --from "$OUT/fcn32s.fcn" --out "$OUT/fcn16s.fcn"
step "FCN-8s from FCN-16s"
"$FCN" train "${train[@]}" --arch fcn8s --from "$OUT/fcn16s.fcn" --out "$OUT/fcn8s.fcn"
# The control is the classifier-init net's exact shape (pretrain's defaults: VGG16 at width 0.25, fc 256, fc6 1x1).
control=(--backbone vgg16-w0.25 --fc-channels 256 --fc-kernel 1)
step "Control: FCN-32s from random weights, same epochs"
"$FCN" train "${train[@]}" --arch fcn32s "${control[@]}" --out "$OUT/fcn32s-random.fcn"

step "Evaluate on the val scenes"
"$FCN" eval "$OUT/fcn32s-random.fcn" "$OUT/fcn32s.fcn" "$OUT/fcn16s.fcn" "$OUT/fcn8s.fcn" --data "$OUT/scenes" --markdown "$OUT/table.md"
"$FCN" eval "$OUT/fcn8s.fcn" --data "$OUT/scenes" --json > "$OUT/fcn8s-eval.json"

step "Pictures: FCN-8s predictions with overlays, and the run's HTML report"
"$FCN" predict "$OUT/fcn8s.fcn" "$OUT"/scenes/JPEGImages/val_0000[0-3].png --out "$OUT/predictions" --overlay
cp "$OUT/predictions/val_00000-overlay.png" "$PICTURES/fcn8s-overlay.png"
"$FCN" report "$OUT/fcn8s.run" --out "$PICTURES/fcn8s-report.html" --examples 8

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
  echo "fcn train \$common --arch fcn32s --backbone vgg16-w0.25 --fc-channels 256 --fc-kernel 1 --out fcn32s-random.fcn"
  echo "fcn eval fcn32s-random.fcn fcn32s.fcn fcn16s.fcn fcn8s.fcn --data scenes"
  echo "fcn predict fcn8s.fcn scenes/JPEGImages/val_0000[0-3].png --out predictions --overlay"
  echo "fcn report fcn8s.run --out fcn8s-report.html"
  echo "fcn data fashion-scenes --out big-scenes --train 1 --val 1 --size 160 --seed 3"
  echo "fcn heatmap classifier.fcn big-scenes/JPEGImages/val_00000.png --class $HEATMAP_CLASS --out heatmap.png"
  echo '```'
  echo
  echo "## Pictures"
  echo
  echo 'FCN-8s on a validation scene (`fcn predict --overlay`), and the whole run as one page: [fcn8s-report.html](pictures/fcn8s-report.html)'
  echo "(curves, IoU per class, confusion matrix, examples)."
  echo
  echo "![FCN-8s prediction overlay](pictures/fcn8s-overlay.png)"
  echo
  echo "Convolutionalization (the paper's figure 2): the Fashion-MNIST classifier, made fully convolutional, run on a"
  echo "160x160 scene; the probability of '$HEATMAP_CLASS' per 32x32 window (""\`fcn heatmap\`""):"
  echo
  echo "![classifier heatmap](pictures/heatmap.png)"
} > "$OUT/results-head.md"
# The demo's part is the file's head; the sections after it (make table1's, make unet-demo's, those written by
# hand from bench/ scripts, each after its <!-- NAME: written by ... --> line) stay as they are.
python3 scripts/results_section.py "$RESULTS" demo "$OUT/results-head.md"
step "Wrote $RESULTS in $(( $(date +%s) - start )) s"
cat "$RESULTS" | sed -n '6,12p'
