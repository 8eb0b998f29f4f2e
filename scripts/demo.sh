#!/usr/bin/env bash
# The demo: what fcn does so far, on a real Fashion-MNIST image (Debian's dataset-fashion-mnist).
# Classifier -> convolutionalize -> heatmap; FCN-32s/16s/8s and U-Net on the same image.
# (Training on Fashion-MNIST scenes, evaluation and pictures arrive with the next issues.)
set -euo pipefail
BUILD=${1:-build}
FCN="$BUILD/fcn"
OUT=${DEMO_OUT:-out/demo}
DATA=/usr/share/datasets/fashion-mnist
mkdir -p "$OUT"

step() { printf '\n== %s\n' "$*"; }

step "A real Fashion-MNIST test image (the first of t10k) as a PGM"
# IDX: a 16-byte header, then 28x28 bytes per image. (head closes the pipe early: no pipefail here.)
{ printf 'P5\n28 28\n255\n'; (set +o pipefail; zcat "$DATA/t10k-images-idx3-ubyte.gz" | head -c $((16 + 784)) | tail -c 784); } > "$OUT/item.pgm"
echo "wrote $OUT/item.pgm (28x28, 8-bit gray)"

step "A VGG16-style classifier at a quarter width for 64x64 gray inputs, and its fully convolutional twin"
"$FCN" init --arch classifier --backbone vgg16-w0.25 --in-channels 1 --input-size 64 --classes 10 --seed 1 --out "$OUT/classifier.fcn"
"$FCN" info "$OUT/classifier.fcn"
"$FCN" convolutionalize "$OUT/classifier.fcn" --out "$OUT/classifier-conv.fcn"

step "The convolutionalized classifier on a larger input gives a class heatmap, not one label"
# A 160x224 canvas with the item pasted at the top-left (PGM rows are contiguous bytes).
{ printf 'P5\n224 160\n255\n'
  for row in $(seq 0 159); do
    if [ "$row" -lt 28 ]; then tail -c +$((14 + row * 28)) "$OUT/item.pgm" | head -c 28; head -c 196 /dev/zero
    else head -c 224 /dev/zero; fi
  done; } > "$OUT/canvas.pgm"
"$FCN" forward "$OUT/classifier-conv.fcn" --input "$OUT/canvas.pgm" --output "$OUT/heatmap.npy"

step "FCN-32s / 16s / 8s and U-Net: logits of exactly the input's size, for any size"
for arch in fcn32s fcn16s fcn8s; do
  "$FCN" init --arch "$arch" --backbone vgg16-w0.25 --in-channels 1 --classes 11 --out "$OUT/$arch.fcn" > /dev/null
  "$FCN" forward "$OUT/$arch.fcn" --input "$OUT/item.pgm" --output "$OUT/$arch-logits.npy"
done
"$FCN" init --arch unet --depth 3 --base-channels 16 --in-channels 1 --classes 11 --out "$OUT/unet.fcn" > /dev/null
"$FCN" forward "$OUT/unet.fcn" --input "$OUT/item.pgm" --output "$OUT/unet-logits.npy"

step "Cost of the paper's setting: FCN-8s VGG16 at 500x500"
"$FCN" init --arch fcn8s --backbone vgg16 --geometry reference --classes 21 --out "$OUT/fcn8s-vgg16.fcn" > /dev/null
"$FCN" info "$OUT/fcn8s-vgg16.fcn" --size 500
rm -f "$OUT/fcn8s-vgg16.fcn"  # 500+ MB of random weights; nothing to keep
echo
echo "demo: done (outputs in $OUT)"
