#!/usr/bin/env bash
# Builds the package's XCTest bundle for aarch64 (build.sh --tests) and runs it under
# qemu-aarch64-static as a Cortex-A72 (Raspberry Pi 4: NEON) and a Cortex-A76 (Raspberry Pi 5:
# NEON + SDOT), then reports which tests pass on each.
#
#   sudo Targets/raspberry-pi/test-aarch64.sh [--cpu cortex-a72|cortex-a76|both] [--no-build] [--src DIR] [XCTEST FILTER]
#
# The bundle is linked dynamically (Debian ships XCTest only as a shared library), so it runs
# inside the build root with qemu -L pointing at the arm64 sysroot's Swift runtime. Tests find
# ../shared through the package root (the copy at /work/mvquant in the root), so ../shared (or
# $MVQUANT_SHARED) is bind-mounted read-only at /work/shared there. Ends with the line
# 'N passed, N failed' over all runs, and exits non-zero when any test failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${MVQ_PI_CACHE:-$HERE/.cache}"
ROOT="$CACHE/trixie-amd64"
TRIPLE=aarch64-unknown-linux-gnu
XCTEST_IN=/work/mvquant/.build-tests/$TRIPLE/release/mvquantPackageTests.xctest

T0=$(date +%s)
step() { printf '\n[%s +%4ss] == %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - T0 ))" "$*"; }
die() { printf '\ntest-aarch64.sh: error: %s\n' "$*" >&2; exit 1; }

CPUS=(cortex-a72 cortex-a76); BUILD=1; FILTER=(); SRC_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu) case "${2:?}" in both) CPUS=(cortex-a72 cortex-a76) ;; *) CPUS=("$2") ;; esac; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --src) SRC_ARGS=(--src "${2:?}"); shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) FILTER=("$1"); shift ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (the tests run inside the build root with chroot)"

if [ "$BUILD" = 1 ]; then
    step "Building the aarch64 test bundle (build.sh --tests)"
    "$HERE/build.sh" "$CACHE/out" --tests "${SRC_ARGS[@]+"${SRC_ARGS[@]}"}"
fi
[ -x "$ROOT$XCTEST_IN" ] || die "no test bundle at $ROOT$XCTEST_IN; run without --no-build"

if ! command -v qemu-aarch64-static >/dev/null; then
    step "Installing qemu-user-static (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static >/dev/null || die "apt-get install qemu-user-static failed"
fi
cp -f "$(command -v qemu-aarch64-static)" "$ROOT/usr/local/bin/qemu-aarch64-static"

SHARED="${MVQUANT_SHARED:-$REPO/../shared}"
MOUNTED=()
cleanup() { local m; for m in "${MOUNTED[@]+"${MOUNTED[@]}"}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
if ! mountpoint -q "$ROOT/proc"; then mount -t proc proc "$ROOT/proc"; MOUNTED+=("$ROOT/proc"); fi
mkdir -p "$ROOT/work/shared"
if [ -d "$SHARED" ] && ! mountpoint -q "$ROOT/work/shared"; then
    # Registered for unmounting as soon as it exists, and never left writable: the fixtures are
    # read-only for the tests, and a writable bind inside the cache would expose them to a later
    # `rm -rf` of the cache.
    mount --bind "$SHARED" "$ROOT/work/shared"
    MOUNTED=("$ROOT/work/shared" "${MOUNTED[@]+"${MOUNTED[@]}"}")
    mount -o remount,bind,ro "$ROOT/work/shared" || { echo "error: cannot make $ROOT/work/shared read-only" >&2; exit 1; }
elif [ ! -d "$SHARED" ]; then
    echo "note: $SHARED is absent; tests that need ../shared will skip"
fi

TOTAL_PASS=0; TOTAL_FAIL=0; SUMMARY=()
for cpu in "${CPUS[@]}"; do
    step "Running the tests under qemu-aarch64-static -cpu $cpu"
    log="$CACHE/test-aarch64-$cpu.log"
    set +e
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
        sh -c 'cd /work/mvquant && exec "$@"' sh \
        /usr/local/bin/qemu-aarch64-static -cpu "$cpu" -L /opt/sysroot-aarch64 \
        -E LD_LIBRARY_PATH=/usr/libexec/swift/lib/swift/linux -E MVQUANT_SHARED=/work/shared \
        "$XCTEST_IN" "${FILTER[@]+"${FILTER[@]}"}" >"$log" 2>&1
    rc=$?
    set -e
    grep -E "^Test Case .* (passed|failed)|error:|SKIP|^\s+Executed" "$log" | sed 's/^/    /' || true
    pass=$(grep -cE "^Test Case .* passed" "$log" || true)
    fail=$(grep -cE "^Test Case .* failed" "$log" || true)
    if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then
        fail=1; echo "    the test bundle exited with status $rc before reporting a failure; see $log"
        tail -5 "$log" | sed 's/^/    /'
    fi
    TOTAL_PASS=$((TOTAL_PASS + pass)); TOTAL_FAIL=$((TOTAL_FAIL + fail))
    SUMMARY+=("$(printf '%-11s %4d passed, %d failed (exit %d; log %s)' "$cpu" "$pass" "$fail" "$rc" "$log")")
done

step "Summary"
printf '  %s\n' "${SUMMARY[@]}"
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
[ "$TOTAL_FAIL" = 0 ]
