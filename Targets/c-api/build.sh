#!/usr/bin/env bash
# Builds the C API of mvquant as a self-contained shared library:
#
#   Targets/c-api/build.sh OUT      ->  OUT/include/mvquant.h, OUT/lib/libmvquant.so, OUT/lib/libmvquant.a,
#                                       OUT/bin/mvquant
#
# The library is the SwiftPM product `mvquant-c` (target Sources/MVQuantC over MVQuantRuntime),
# built in release with `-static-stdlib`: the Swift runtime (libswiftCore, …) is linked into it,
# so it needs only libc, libm, libstdc++ and libgcc_s at run time and runs on a machine without a
# Swift toolchain. A version script (exports.map) exports the mvq_* functions only, and the
# soname is libmvquant.so. OUT/bin/mvquant is the command line built the same way (same flags, same
# scratch directory), for comparing the library's logits with `mvquant infer` (Examples/run.sh).
#
# OUT/lib/libmvquant.a is the same code as one relocatable object: the library's objects, the
# Swift runtime's image registration (swiftrt.o) and the members of the static Swift runtime they
# need (libswiftCore.a, libswiftGlibc.a, libdispatch.a, libBlocksRuntime.a), joined with `ld -r`;
# then every symbol but mvq_* is made local (objcopy), so it cannot clash with the program's. Link:
#   cc … prog.c OUT/lib/libmvquant.a -lstdc++ -lm -ldl -pthread
#
# Environment: MVQ_CAPI_SCRATCH (SwiftPM scratch directory, default .build-capi in the package),
# MVQ_JOBS (swift build -j).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${1:?usage: Targets/c-api/build.sh OUT}"
mkdir -p "$OUT/include" "$OUT/lib" "$OUT/bin"
OUT="$(cd "$OUT" && pwd)"
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH=/opt/swift/usr/bin:$PATH; fi
SCRATCH="${MVQ_CAPI_SCRATCH:-$REPO/.build-capi}"
JOBS=()
[ -n "${MVQ_JOBS:-}" ] && JOBS=(-j "$MVQ_JOBS")
cd "$REPO"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
COMMON=(-c release --scratch-path "$SCRATCH" "${JOBS[@]}" -Xswiftc -static-stdlib)

echo "== swift build --product mvquant-c (static Swift runtime)"
swift build "${COMMON[@]}" --product mvquant-c \
    -Xlinker --version-script="$HERE/exports.map" -Xlinker -soname=libmvquant.so 2>&1 | tee "$LOG"
if grep -q "warning:" "$LOG"; then echo "build.sh: the build has warnings" >&2; exit 1; fi
echo "== swift build --product mvquant (the same flags)"
swift build "${COMMON[@]}" --product mvquant 2>&1 | tee "$LOG"
if grep -q "warning:" "$LOG"; then echo "build.sh: the build has warnings" >&2; exit 1; fi

BIN="$(swift build "${COMMON[@]}" --show-bin-path)"
cp "$REPO/include/mvquant.h" "$OUT/include/mvquant.h"
cp "$BIN/libmvquant-c.so" "$OUT/lib/libmvquant.so.tmp" && mv "$OUT/lib/libmvquant.so.tmp" "$OUT/lib/libmvquant.so"
# The static archive (see the top).
RESOURCE="$(swift -print-target-info | sed -n 's/.*"runtimeResourcePath": "\(.*\)".*/\1/p')"
STATIC="${RESOURCE%/swift}/swift_static/linux"
OBJECTS="$BIN/mvquant-c.product/Objects.LinkFileList"
[ -f "$STATIC/$(uname -m)/swiftrt.o" ] || { echo "build.sh: no $STATIC/$(uname -m)/swiftrt.o" >&2; exit 1; }
[ -f "$OBJECTS" ] || { echo "build.sh: no object list $OBJECTS (another SwiftPM layout?)" >&2; exit 1; }
echo "== libmvquant.a: ld -r of $(wc -l < "$OBJECTS") objects with the static Swift runtime ($STATIC)"
TMPO="$(mktemp -d)"
trap 'rm -f "$LOG"; rm -rf "$TMPO"' EXIT
tr -d "'" < "$OBJECTS" > "$TMPO/objects"
ld -r -o "$TMPO/all.o" "$STATIC/$(uname -m)/swiftrt.o" @"$TMPO/objects" \
    -L"$STATIC" -lswiftCore -lswiftGlibc -ldispatch -lBlocksRuntime
objcopy -w --keep-global-symbol='mvq_*' "$TMPO/all.o" "$TMPO/mvquant.o"
rm -f "$OUT/lib/libmvquant.a.tmp"
ar rcs "$OUT/lib/libmvquant.a.tmp" "$TMPO/mvquant.o"
mv "$OUT/lib/libmvquant.a.tmp" "$OUT/lib/libmvquant.a"
cp "$BIN/mvquant" "$OUT/bin/mvquant.tmp" && mv "$OUT/bin/mvquant.tmp" "$OUT/bin/mvquant"

# Self-contained: no Swift or Foundation library may be needed at run time.
echo "== ldd $OUT/lib/libmvquant.so"
ldd "$OUT/lib/libmvquant.so"
if ldd "$OUT/lib/libmvquant.so" | grep -Ei "libswift|libFoundation|libdispatch|libBlocksRuntime|not found"; then
    echo "build.sh: libmvquant.so depends on the Swift runtime (see above)" >&2
    exit 1
fi
# Global or weak dynamic symbols (upper-case nm types) other than mvq_*; local ones are not exported.
exported=$(nm -D --defined-only "$OUT/lib/libmvquant.so" | awk '$2 ~ /^[A-Z]$/ {print $3}' | grep -v '^mvq_' || true)
if [ -n "$exported" ]; then
    echo "build.sh: libmvquant.so exports symbols other than mvq_*:" >&2
    echo "$exported" | head >&2
    exit 1
fi
globals=$(nm --defined-only "$OUT/lib/libmvquant.a" 2>/dev/null | awk '$2 ~ /^[A-Z]$/ {print $3}' | grep -v '^mvq_' || true)
if [ -n "$globals" ]; then
    echo "build.sh: libmvquant.a defines global symbols other than mvq_*:" >&2
    echo "$globals" | head >&2
    exit 1
fi
echo "build.sh: wrote $OUT/include/mvquant.h, $OUT/lib/libmvquant.so ($(nm -D --defined-only "$OUT/lib/libmvquant.so" | grep -c ' T mvq_') functions), $OUT/lib/libmvquant.a ($(du -m "$OUT/lib/libmvquant.a" | cut -f1) MB), $OUT/bin/mvquant"
