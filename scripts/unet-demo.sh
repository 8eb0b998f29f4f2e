#!/usr/bin/env bash
# U-Net as its paper trains it, on touching objects made from real data (make unet-demo):
# Fashion-MNIST cells (touching, overlapping items; binary labels; instance masks), 30 training
# images, a binary U-Net trained with and without the border weight map (w0=10, sigma=5) and with
# and without elastic deformation (alpha=10 px on a 3x3 grid). Reports mean IU, Dice and the
# separation score on 100 val scenes, with overlays. Writes docs/unet-demo.md and its section of
# docs/results.md.
#   bash scripts/unet-demo.sh [BUILD]      (EPOCHS, TRAIN set the budget)
set -euo pipefail
BUILD=${1:-build}
FCN="$BUILD/fcn"
OUT=${UNET_OUT:-out/unet-demo}
EPOCHS=${EPOCHS:-100}
TRAIN=${TRAIN:-30}
SECTION=${SECTION:-docs/unet-demo.md}
RESULTS=${RESULTS:-docs/results.md}
PICTURES=${PICTURES:-docs/pictures}
mkdir -p "$OUT" "$PICTURES"
step() { printf '\n== %s\n' "$*"; }
json() { python3 -c "import json, sys; d = json.load(open('$1')); print($2)"; }
start=$(date +%s)

step "Fashion-MNIST cells: $TRAIN train + 100 val scenes, 96x96"
"$FCN" data fashion-cells --out "$OUT/cells" --train "$TRAIN" --val 100 --size 96 --seed 0

common=(--data "$OUT/cells" --arch unet --depth 3 --base-channels 16 --batch-norm --dropout 0.5 --classes 1
        --epochs "$EPOCHS" --batch 4 --optimizer adamw --lr 2e-3 --weight-decay 1e-4 --flip --val-every 10 --seed 0 --overwrite)
weightmap=(--weight-map w0=10,sigma=5)
elastic=(--elastic alpha=10,grid=3)
declare -A runs=(
  [plain]=""
  [weightmap]="${weightmap[*]}"
  [elastic]="${elastic[*]}"
  [weightmap-elastic]="${weightmap[*]} ${elastic[*]}"
)
order=(plain weightmap elastic weightmap-elastic)
for name in "${order[@]}"; do
  step "U-Net $name ($EPOCHS epochs)"
  # shellcheck disable=SC2086
  "$FCN" train "${common[@]}" ${runs[$name]} --out "$OUT/unet-$name.fcn"
  "$FCN" eval "$OUT/unet-$name.fcn" --data "$OUT/cells" --min-object 30 --json > "$OUT/unet-$name-eval.json"
done

step "Overlays of touching items: without and with the weight map (both with elastic deformation)"
for name in elastic weightmap-elastic; do
  "$FCN" predict "$OUT/unet-$name.fcn" "$OUT/cells/JPEGImages/val_00001.png" --out "$OUT/predictions-$name" --overlay \
    --instances --min-object 30 --json > "$OUT/predictions-$name.json"
  cp "$OUT/predictions-$name/val_00001-overlay.png" "$PICTURES/unet-$name-overlay.png"
done
objects() { json "$OUT/predictions-$1.json" "sum(d['images'][0]['objects'].values())"; }

row() {
  local name=$1 label=$2 f="$OUT/unet-$1-eval.json"
  echo "| $label | $(json "$f" "f'{100 * d[\"mean_iu\"]:.1f}'") | $(json "$f" "f'{100 * d[\"dice\"]:.1f}'") | $(json "$f" "f'{100 * d[\"per_class\"][1][\"dice\"]:.1f}'") | $(json "$f" "f'{100 * d[\"separation\"][\"score\"]:.1f}% ({d[\"separation\"][\"separated\"]} of {d[\"separation\"][\"touching_pairs\"]})'") | $(json "$f" "f'{d[\"rand_error\"]:.4f}'") | $(json "$f" "f'{d[\"objects\"][\"f1\"]:.3f} ({d[\"objects\"][\"matched\"]} of {d[\"objects\"][\"true\"]}; {d[\"objects\"][\"predicted\"]} segments)'") | $(json "$f" "f'{d[\"training\"][\"train_seconds\"]:.0f} s'") |"
}
{
  echo "## Touching objects: U-Net's weight map and elastic deformation"
  echo
  echo "Written by \`make unet-demo\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPU cores,"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); ISA: $(grep -o -w 'avx2\|avx512f\|avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | xargs))."
  echo "Data: \`fcn data fashion-cells\`: 96x96 scenes of 4-7 Fashion-MNIST items packed so that they touch and overlap,"
  echo "binary labels (background / item) with a one-pixel background border where two items meet (darkened in the image,"
  echo "like the membranes of the paper's EM images) and instance masks; $TRAIN training scenes (few, as in the paper), 100 val"
  echo "scenes from t10k. Net: binary U-Net (one logit, sigmoid), depth 3, 16 base channels, batch norm, dropout 0.5 at the"
  echo "end of the contracting path, He init; $EPOCHS epochs, batch 4, AdamW lr 2e-3, flips; best of every 10 epochs by val mean IU."
  echo "Separation: of the touching ground-truth pairs (at most 2 px apart), the share whose predicted masks are"
  echo "separated by at least one background pixel (their main 8-connected predicted components differ)."
  echo "Rand error: the adapted Rand error of the ISBI 2012 EM challenge that the U-Net paper reports (lower is better;"
  echo "0 = every item one predicted segment of its own): the predicted foreground's 8-connected components against the"
  echo "instances, over the item pixels, the val split scored as one volume."
  echo "Objects found: an item counts as found where one predicted segment (as above) overlaps it with IoU above 0.5;"
  echo "F1 = 2 found / (items + predicted segments), with the items found of all items and the predicted segments of 30"
  echo "pixels or more (\`fcn eval --min-object 30\`: specks are not objects, as in the overlays' \`fcn predict --instances --min-object 30\`)."
  echo
  echo "| U-Net training | mean IU | mean Dice | item Dice | separation | Rand error | objects found (F1) | train time |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  row plain "plain (cross-entropy)"
  row weightmap "+ weight map (w0=10, sigma=5)"
  row elastic "+ elastic deformation (alpha=10, 3x3)"
  row weightmap-elastic "+ both"
  echo
  echo "One seed per row: read differences of a point or two in mean IU / Dice as noise; the separation score is the"
  echo "quantity the weight map targets (the borders are ~1.6% of the pixels, so they barely move mean IU)."
  echo
  echo "Without (left) and with (right) the weight map, both with elastic deformation, on val scene 1, each predicted object"
  echo "outlined (\`fcn predict --overlay --instances --min-object 30\`): $(objects elastic) objects without the weight map,"
  echo "$(objects weightmap-elastic) with it (touching items that are not kept apart count as one):"
  echo
  echo "![U-Net without weight map](pictures/unet-elastic-overlay.png) ![U-Net with weight map](pictures/unet-weightmap-elastic-overlay.png)"
  echo
  echo "Commands (seed 0):"
  echo '```'
  echo "fcn data fashion-cells --out cells --train $TRAIN --val 100 --size 96 --seed 0"
  echo "common='--data cells --arch unet --depth 3 --base-channels 16 --batch-norm --dropout 0.5 --classes 1 --epochs $EPOCHS --batch 4 --optimizer adamw --lr 2e-3 --weight-decay 1e-4 --flip --val-every 10 --seed 0'"
  echo "fcn train \$common --out unet-plain.fcn"
  echo "fcn train \$common --weight-map w0=10,sigma=5 --out unet-weightmap.fcn"
  echo "fcn train \$common --elastic alpha=10,grid=3 --out unet-elastic.fcn"
  echo "fcn train \$common --weight-map w0=10,sigma=5 --elastic alpha=10,grid=3 --out unet-weightmap-elastic.fcn"
  echo "fcn eval unet-weightmap.fcn --data cells --min-object 30 --json    # mean_iu, dice, per_class[].dice, separation, rand_error, objects"
  echo '```'
  echo "All of it: \`EPOCHS=$EPOCHS TRAIN=$TRAIN bash scripts/unet-demo.sh\` ($(( $(date +%s) - start )) s here)."
} > "$SECTION"
python3 scripts/results_section.py "$RESULTS" unet-demo "$SECTION"
cat "$SECTION"
