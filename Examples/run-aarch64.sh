#!/usr/bin/env bash
# The C API on aarch64: builds libmvquant.so for aarch64 (Targets/raspberry-pi/build.sh --library),
# cross-compiles Examples/c/classify.c and api_test.c against it (C99, -Wall -Werror), runs them
# under qemu as a Cortex-A72 (Raspberry Pi 4) and a Cortex-A76 (Raspberry Pi 5) with the trixie
# arm64 sysroot the build uses, and checks that their logits are byte-identical to the x86-64
# `mvquant infer` on the same images and that api_test passes.
#
#   Examples/run-aarch64.sh X86_OUT OUT
#
# X86_OUT is what Examples/run.sh X86_OUT left: its x86-64 mvquant, int8 model, test images and
# `infer` logits (the references). Needs root (build.sh), qemu-user-static, gcc-aarch64-linux-gnu.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
X86="$(cd "${1:?usage: Examples/run-aarch64.sh X86_OUT OUT}" && pwd)"
OUT="${2:?usage: Examples/run-aarch64.sh X86_OUT OUT}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
CACHE="${MVQ_PI_CACHE:-$REPO/Targets/raspberry-pi/.cache}"
SYSROOT="$CACHE/trixie-amd64/opt/sysroot-aarch64"
CC=aarch64-linux-gnu-gcc
command -v "$CC" >/dev/null || { echo "run-aarch64.sh: $CC is missing (apt-get install gcc-aarch64-linux-gnu)" >&2; exit 2; }
command -v qemu-aarch64-static >/dev/null || { echo "run-aarch64.sh: qemu-aarch64-static is missing" >&2; exit 2; }
W="$X86/examples"
[ -f "$W/model.mvq" ] || { echo "run-aarch64.sh: $W/model.mvq is missing: run Examples/run.sh $X86 first" >&2; exit 2; }

bash "$REPO/Targets/raspberry-pi/build.sh" --library "$OUT"
[ -d "$SYSROOT" ] || { echo "run-aarch64.sh: no arm64 sysroot at $SYSROOT" >&2; exit 2; }

echo "== cross-compiling the examples for aarch64 (C99, -Wall -Werror)"
# The library links against trixie's glibc (2.38+ symbols); the cross toolchain's own libc may be
# older, so its references are left to the run-time loader of the trixie sysroot.
LINK=(-L "$OUT/lib" -lmvquant -Wl,--allow-shlib-undefined)
"$CC" -std=c99 -Wall -Werror -I "$OUT/include" "$HERE/c/classify.c" "${LINK[@]}" -o "$OUT/classify"
"$CC" -std=c99 -Wall -Werror -pthread -I "$OUT/include" "$HERE/c/api_test.c" "${LINK[@]}" -o "$OUT/api_test"

FAILED=0
fail() { echo "FAIL: $*" >&2; FAILED=1; }
run() {  # run CPU PROGRAM ARGS...: under qemu with the trixie sysroot's loader and libraries
    local cpu=$1; shift
    LD_LIBRARY_PATH="$OUT/lib" qemu-aarch64-static -cpu "$cpu" -L "$SYSROOT" "$@"
}
for cpu in cortex-a72 cortex-a76; do
    for model in "$REPO/Calibration/mobilevit_xxs_cifar10_64" "$W/model.mvq"; do
        kind=float; [ "$model" = "$W/model.mvq" ] && kind=int8
        for image in gradient checker; do
            run "$cpu" "$OUT/classify" "$model" "$W/$image.ppm" --threads 2 --logits "$OUT/$cpu-$kind-$image.f32" >/dev/null \
                || { fail "$cpu classify $kind $image exited $?"; continue; }
            if cmp -s "$OUT/$cpu-$kind-$image.f32" "$W/$kind-$image-infer.f32"; then
                echo "  identical  $cpu classify.c ($kind, $image.ppm) = x86-64 mvquant infer --images"
            else
                fail "$cpu classify.c ($kind, $image.ppm) differs from the x86-64 mvquant infer"
            fi
        done
    done
    echo "== api_test under $cpu (int8 model)"
    (cd "$OUT" && run "$cpu" "$OUT/api_test" "$W/model.mvq" "$W/checker.ppm" | tail -1) || fail "api_test under $cpu"
done
if [ "$FAILED" != 0 ]; then
    echo "Examples/run-aarch64.sh: FAILED" >&2
    exit 1
fi
echo "Examples/run-aarch64.sh: PASS (aarch64 libmvquant.so under qemu A72 and A76: logits identical to x86-64 infer; api_test passed)"
