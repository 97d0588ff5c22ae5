#!/usr/bin/env bash
# Are two builds' results bit-identical? For refactors that must not change behaviour.
#
#   bash Targets/bench/compare_builds.sh REF [OUT]
#
# Builds commit REF (release, in a temporary git worktree) and the working tree, then with each
# binary writes: the .mvq of the default CIFAR-10 model (calibrated as `mvquant calibrate` does by default) and of
# MobileViT XXS/XS/S (calibrated on 32 CIFAR images at 256²); int8 and float logits on every
# classification golden input; int8 and float logits on all of ../shared/data/cifar10/val.
# Then compares the two sets byte for byte and prints one line per output. Exit 0 when every
# output is identical. Needs ../shared (the references); takes about 25 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SHARED=${MVQUANT_SHARED:-$ROOT/../shared}
[ $# -ge 1 ] || { echo "usage: $0 REF [OUT]" >&2; exit 1; }
REF=$1
OUT=${2:-$(mktemp -d /tmp/mvquant-compare.XXXXXX)}
[ -d "$SHARED/golden" ] || { echo "$0: $SHARED/golden is missing" >&2; exit 2; }
mkdir -p "$OUT"

ref_tree=$OUT/ref-tree
if [ ! -x "$ref_tree/.build/release/mvquant" ]; then
  rm -rf "$ref_tree"
  git worktree add -q --detach "$ref_tree" "$REF"
  (cd "$ref_tree" && swift build -c release 2>&1 | tail -1)
fi
swift build -c release 2>&1 | tail -1

outputs() {  # BIN DIR
  local bin=$1 dir=$2
  # infer records the model's path in its output's metadata, so both builds run the int8 models
  # from one path: copies in $OUT/run.
  mkdir -p "$dir" "$OUT/run"
  "$bin" calibrate --no-eval --report-images 0 --output "$dir/cifar.mvq" >/dev/null
  for arch in xxs xs s; do
    "$bin" calibrate --model "$SHARED/models/reference/mobilevit_$arch" --images "$SHARED/data/cifar10/calib" \
      --count 32 --size 256x256 --no-eval --report-images 0 --output "$dir/$arch.mvq" >/dev/null
  done
  for g in "$SHARED"/golden/mobilevit_*.safetensors; do
    local name arch
    name=$(basename "$g" .safetensors)
    arch=$(echo "$name" | cut -d_ -f2)
    cp "$dir/$arch.mvq" "$OUT/run/$arch.mvq"
    "$bin" infer --model "$OUT/run/$arch.mvq" --input "$g" --threads 1 --output "$dir/$name.int8.safetensors" >/dev/null
    "$bin" infer --model "$SHARED/models/reference/mobilevit_$arch" --input "$g" --output "$dir/$name.float.safetensors" >/dev/null
  done
  cp "$dir/cifar.mvq" "$OUT/run/cifar.mvq"
  "$bin" infer --model "$OUT/run/cifar.mvq" --images "$SHARED/data/cifar10/val" --output "$dir/val.int8.safetensors" >/dev/null
  "$bin" infer --model "$ROOT/Calibration/mobilevit_xxs_cifar10_64" --images "$SHARED/data/cifar10/val" --output "$dir/val.float.safetensors" >/dev/null
}

echo "== outputs of $REF ($(git rev-parse --short "$REF"))"
outputs "$ref_tree/.build/release/mvquant" "$OUT/ref"
echo "== outputs of the working tree ($(git rev-parse --short HEAD)$(git diff --quiet || echo ', modified'))"
outputs "$ROOT/.build/release/mvquant" "$OUT/new"

status=0
for f in "$OUT"/ref/*; do
  name=$(basename "$f")
  if cmp -s "$f" "$OUT/new/$name"; then echo "identical  $name"; else echo "DIFFERENT  $name"; status=1; fi
done
echo "outputs in $OUT (remove the worktree with: git worktree remove --force $ref_tree)"
exit $status
