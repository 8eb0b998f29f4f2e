#!/usr/bin/env bash
# The layering check (docs/architecture.md): every folder of src/fcn may include only folders of a
# lower layer, never one of its own layer or above, so the library's dependencies flow one way and
# no two folders can depend on each other, directly or through others.
#
#   scripts/check-layers.sh [ROOT]     checks ROOT/src/fcn (default: this repository); exit 1 on a violation
#   scripts/check-layers.sh --self-test plants an upward and a sideways include in a scratch tree and
#                                       checks that both are caught and that a clean tree passes
set -euo pipefail

# Layer of each folder, lowest first. Folders of one layer (data and serialize, report and bench)
# may not include each other either.
declare -A layer=(
  [util]=0
  [formats]=1
  [models]=2
  [data]=3 [serialize]=3
  [infer]=4
  [eval]=5
  [train]=6
  [report]=7 [bench]=7
)

check() {
  local root="$1" violations=0 file from to line
  [ -d "$root/src/fcn" ] || { echo "check-layers: $root/src/fcn is not a folder" >&2; return 2; }
  while IFS= read -r match; do
    file="${match%%:*}"
    line="${match#*:}"; line="${line%%:*}"
    from="${file#"$root"/src/fcn/}"; from="${from%%/*}"
    to="$(sed -E 's/.*#include[[:space:]]*"fcn\/([a-z_]+)\/.*/\1/' <<<"${match#*:*:}")"
    if [ -z "${layer[$from]+x}" ]; then
      echo "check-layers: ${file#"$root"/}: folder '$from' has no layer (add it to scripts/check-layers.sh and docs/architecture.md)"
      violations=$((violations + 1)); continue
    fi
    if [ -z "${layer[$to]+x}" ]; then
      echo "check-layers: ${file#"$root"/}:$line includes unknown folder '$to'"
      violations=$((violations + 1)); continue
    fi
    if [ "$from" != "$to" ] && [ "${layer[$to]}" -ge "${layer[$from]}" ]; then
      echo "check-layers: ${file#"$root"/}:$line: $from (layer ${layer[$from]}) includes $to (layer ${layer[$to]}): a folder may include only lower layers"
      violations=$((violations + 1))
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"fcn/[a-z_]+/' "$root/src/fcn" --include='*.h' --include='*.cpp' || true)
  if [ "$violations" -gt 0 ]; then
    echo "check-layers: $violations include(s) against the layering"
    return 1
  fi
  echo "check-layers: $(find "$root/src/fcn" -name '*.h' -o -name '*.cpp' | wc -l) files, includes flow one way"
}

self_test() {
  local scratch
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' RETURN
  mkdir -p "$scratch/src/fcn/util" "$scratch/src/fcn/models" "$scratch/src/fcn/train" "$scratch/src/fcn/data" "$scratch/src/fcn/serialize"
  printf '#include "fcn/util/error.h"\n' >"$scratch/src/fcn/models/fcn.cpp"
  printf '#include "fcn/models/fcn.h"\n#include "fcn/util/error.h"\n' >"$scratch/src/fcn/train/trainer.cpp"
  printf '#pragma once\n' >"$scratch/src/fcn/util/error.h"
  check "$scratch" >/dev/null || { echo "self-test: a clean tree was rejected"; return 1; }
  printf '#include "fcn/train/trainer.h"\n' >"$scratch/src/fcn/util/planted.cpp"
  if check "$scratch" >/dev/null; then echo "self-test: an upward include (util -> train) was not caught"; return 1; fi
  rm "$scratch/src/fcn/util/planted.cpp"
  printf '#include "fcn/serialize/model_file.h"\n' >"$scratch/src/fcn/data/planted.cpp"
  if check "$scratch" >/dev/null; then echo "self-test: a sideways include (data -> serialize) was not caught"; return 1; fi
  echo "check-layers self-test: upward and sideways includes caught, clean tree passes"
}

if [ "${1:-}" = "--self-test" ]; then
  self_test
else
  check "${1:-$(cd "$(dirname "$0")/.." && pwd)}"
fi
