#!/usr/bin/env bash
# Builds libmvquant (Targets/c-api/build.sh OUT), then builds and runs the C and Python examples
# (the C ones twice: with libmvquant.so and with the static libmvquant.a)
# against the default model (Calibration/mobilevit_xxs_cifar10_64, float) and an int8 .mvq
# calibrated from it, and checks:
#   - the logits of classify.c (RGB from a PPM, and pixel values from `mvquant preprocess`) and of
#     classify.py equal those of `mvquant infer` on the same input, byte for byte;
#   - api_test.c: two threads with two sessions on one model give identical logits, and every
#     error path returns its code and message without ending the process.
# Exits nonzero on any mismatch. Usage: Examples/run.sh OUT   (MVQ_SKIP_BUILD=1: OUT is built)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
OUT="${1:?usage: Examples/run.sh OUT}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$REPO"
[ "${MVQ_SKIP_BUILD:-0}" = "1" ] || bash Targets/c-api/build.sh "$OUT"
PY="${MVQUANT_PYTHON:-python3}"
CC="${CC:-cc}"
W="$OUT/examples"
rm -rf "$W"
mkdir -p "$W"
MVQ="$OUT/bin/mvquant"
export LD_LIBRARY_PATH="$OUT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
FAILED=0
fail() { echo "FAIL: $*" >&2; FAILED=1; }

echo "== compiling the examples (C99, -Wall -Werror)"
"$CC" -std=c99 -Wall -Werror -I "$OUT/include" "$HERE/c/classify.c" -L "$OUT/lib" -lmvquant -o "$W/classify"
"$CC" -std=c99 -Wall -Werror -pthread -I "$OUT/include" "$HERE/c/api_test.c" -L "$OUT/lib" -lmvquant -o "$W/api_test"

STATIC_LIBS=(-lstdc++ -lm -ldl -pthread)
"$CC" -std=c99 -Wall -Werror -I "$OUT/include" "$HERE/c/classify.c" "$OUT/lib/libmvquant.a" "${STATIC_LIBS[@]}" -o "$W/classify-static"
"$CC" -std=c99 -Wall -Werror -pthread -I "$OUT/include" "$HERE/c/api_test.c" "$OUT/lib/libmvquant.a" "${STATIC_LIBS[@]}" -o "$W/api_test-static"
if ldd "$W/classify-static" | grep -Ei "libmvquant|libswift|libFoundation|libdispatch"; then fail "classify-static needs a shared mvquant or Swift library"; fi

echo "== an int8 model: mvquant calibrate --no-eval --report-images 0 --count 32"
"$MVQ" calibrate --no-eval --report-images 0 --count 32 --output "$W/model.mvq" >/dev/null
FLOAT_MODEL="$REPO/Calibration/mobilevit_xxs_cifar10_64"

# Test images: two PPMs (odd sizes, so resize and centre crop run), written by Python.
"$PY" - "$W" <<'PYEOF'
import sys
out = sys.argv[1]
def write(name, w, h, f):
    data = bytearray()
    for y in range(h):
        for x in range(w):
            data += bytes(f(x, y))
    with open(f"{out}/{name}", "wb") as fh:
        fh.write(b"P6\n# mvquant run.sh\n%d %d\n255\n" % (w, h) + bytes(data))
write("gradient.ppm", 97, 71, lambda x, y: ((x * 255) // 96, (y * 255) // 70, ((x + y) * 7) % 256))
seed = [12345]
def noise(x, y):
    v = []
    for _ in range(3):
        seed[0] = (seed[0] * 1103515245 + 12345) % (1 << 31)
        v.append((seed[0] >> 16) % 256 // 2 + (64 if (x // 8 + y // 8) % 2 else 0))
    return v
write("checker.ppm", 48, 80, noise)
PYEOF

# The float32 tensor TENSOR of a safetensors file, raw, into OUT.
extract() {
    "$PY" - "$1" "$2" "$3" <<'PYEOF'
import json, struct, sys
path, tensor, out = sys.argv[1:]
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
info = json.loads(data[8:8 + n])[tensor]
assert info["dtype"] == "F32", info
a, b = info["data_offsets"]
open(out, "wb").write(data[8 + n + a:8 + n + b])
PYEOF
}

same() {  # same A B WHAT
    if cmp -s "$1" "$2"; then echo "  identical  $3 ($(stat -c %s "$1") bytes)"; else fail "$3: $1 and $2 differ"; fi
}

for model in "$FLOAT_MODEL" "$W/model.mvq"; do
    kind=float; [ "$model" = "$W/model.mvq" ] && kind=int8
    for image in gradient checker; do
        ppm="$W/$image.ppm"
        echo "== $kind model, $image.ppm"
        "$MVQ" infer --model "$model" --images "$ppm" --threads 1 --output "$W/$kind-$image-infer.safetensors"
        extract "$W/$kind-$image-infer.safetensors" logits "$W/$kind-$image-infer.f32"
        "$W/classify" "$model" "$ppm" --threads 2 --logits "$W/$kind-$image-c.f32"
        same "$W/$kind-$image-c.f32" "$W/$kind-$image-infer.f32" "classify.c (RGB) = mvquant infer --images"
        "$W/classify-static" "$model" "$ppm" --logits "$W/$kind-$image-cs.f32" >/dev/null
        same "$W/$kind-$image-cs.f32" "$W/$kind-$image-infer.f32" "classify.c with libmvquant.a (RGB) = mvquant infer --images"
        "$PY" "$HERE/python/classify.py" --lib "$OUT/lib/libmvquant.so" "$model" "$ppm" --logits "$W/$kind-$image-py.f32" >/dev/null
        same "$W/$kind-$image-py.f32" "$W/$kind-$image-infer.f32" "classify.py (RGB) = mvquant infer --images"
        "$MVQ" preprocess --model "$model" "$ppm" --output "$W/$kind-$image-px.safetensors"
        extract "$W/$kind-$image-px.safetensors" pixel_values "$W/$kind-$image-px.f32"
        "$MVQ" infer --model "$model" --input "$W/$kind-$image-px.safetensors" --threads 1 --output "$W/$kind-$image-infer-px.safetensors"
        extract "$W/$kind-$image-infer-px.safetensors" logits "$W/$kind-$image-infer-px.f32"
        "$W/classify" "$model" --pixels "$W/$kind-$image-px.f32" 64 64 --logits "$W/$kind-$image-cpx.f32" >/dev/null
        same "$W/$kind-$image-cpx.f32" "$W/$kind-$image-infer-px.f32" "classify.c --pixels = mvquant infer --input"
    done
done

SEG=""
for candidate in "${MVQUANT_SHARED:-$REPO/../shared}/models/deeplabv3_mobilevit_xxs_cifar10_mosaic"; do
    [ -d "$candidate" ] && SEG="$candidate"
done
for model in "$W/model.mvq" "$FLOAT_MODEL"; do
    echo "== api_test $(basename "$model")${SEG:+ (with the segmentation model $(basename "$SEG"))}"
    (cd "$W" && ./api_test "$model" "$W/checker.ppm" $SEG) || fail "api_test on $model"
done
echo "== api_test with libmvquant.a, model.mvq"
(cd "$W" && ./api_test-static "$W/model.mvq" "$W/gradient.ppm" $SEG | tail -1) || fail "api_test-static"


if [ "$FAILED" != 0 ]; then
    echo "Examples/run.sh: FAILED" >&2
    exit 1
fi
echo "Examples/run.sh: PASS (C (shared and static) and Python logits identical to mvquant infer; api_test passed)"
