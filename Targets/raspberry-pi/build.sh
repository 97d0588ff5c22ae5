#!/usr/bin/env bash
# Cross-builds mvquant for 64-bit Raspberry Pi OS (aarch64) on an x86-64 Debian machine, using
# only Debian packages: one statically linked, release-optimised aarch64 ELF, OUT_DIR/mvquant.
#
#   sudo Targets/raspberry-pi/build.sh OUT_DIR [--profile NAME] [--tests] [--strip] [--src DIR]
#   sudo Targets/raspberry-pi/build.sh --library OUT_DIR [--profile NAME] [--strip] [--src DIR]
#   sudo Targets/raspberry-pi/build.sh --clean          # unmount and delete the cache
#
#   --profile NAME  generic-aarch64 (default), raspberry-pi-4 or raspberry-pi-5 (Targets/profiles/)
#   --tests         also build the XCTest bundle for aarch64 (OUT_DIR/mvquantPackageTests.xctest,
#                   dynamically linked; run it with test-aarch64.sh)
#   --strip         link without symbols and debug info (about half the size)
#   --src DIR       build this checkout instead of the one holding this script
#   --library       build the C API instead of the executable: OUT_DIR/include/mvquant.h and
#                   OUT_DIR/lib/libmvquant.so for aarch64, the Swift runtime linked in statically
#                   (as Targets/c-api/build.sh does on x86-64)
#
# How: Debian trixie ships Swift 6.0.3 (`swiftlang`) for amd64 and arm64. The script keeps, under
# Targets/raspberry-pi/.cache/ (or $MVQ_PI_CACHE):
#   trixie-amd64/                      a debootstrap'ed trixie amd64 root with swiftlang (the compiler)
#   trixie-amd64/opt/sysroot-aarch64/  the arm64 libc, libgcc, libstdc++ and Swift static runtime,
#                                      unpacked from Debian's arm64 .debs with dpkg-deb -x
#   trixie-amd64/opt/mvq-icu-stubs/    empty libicu*swift.a (named by Debian's static link args,
#                                      not shipped by Debian; mvquant does not use Foundation/ICU)
#   trixie-amd64/work/mvquant/         a copy of the package (Package.swift, Sources, Tests, ...) and
#                                      its .build-<profile> / .build-tests dirs
# and runs `swift build --triple aarch64-unknown-linux-gnu -static-executable` inside the root.
# Everything is reused on later runs: a second run costs the copy plus SwiftPM's incremental build.
#
# Profiles (Targets/profiles/*.json) only add -target-cpu/-mcpu tuning; the binary still picks its
# kernels (NEON, SDOT, ...) at run time from the CPU it runs on. Default: generic-aarch64, which
# runs on every Raspberry Pi 3/4/5 with a 64-bit OS.
#
# Environment: MVQ_PI_CACHE (cache dir), MVQ_DEBIAN_MIRROR (override the mirror taken from the
# machine's apt sources), MVQ_JOBS (swift build -j).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${MVQ_PI_CACHE:-$HERE/.cache}"
ROOT="$CACHE/trixie-amd64"
SUITE=trixie
SYSROOT_IN=/opt/sysroot-aarch64          # paths as seen inside the root
ICU_IN=/opt/mvq-icu-stubs
WORK_IN=/work/mvquant
STATE_IN=/opt/mvq-state
TRIPLE=aarch64-unknown-linux-gnu
# Packages: the compiler in the amd64 root, the target libraries in the arm64 sysroot.
HOST_PKGS=(swiftlang libc6-dev libstdc++-14-dev libgcc-14-dev)
ARM64_PKGS=(libc6:arm64 libc6-dev:arm64 linux-libc-dev libgcc-14-dev:arm64 libstdc++-14-dev:arm64
            libgcc-s1:arm64 libstdc++6:arm64 libatomic1:arm64 swiftlang:arm64 libswiftlang:arm64)

T0=$(date +%s)
step() { printf '\n[%s +%4ss] == %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - T0 ))" "$*"; }
info() { printf '[%s +%4ss]    %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - T0 ))" "$*"; }
die() { printf '\nbuild.sh: error: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

ORIG_ARGS="$*"
OUT=""; PROFILE=generic-aarch64; TESTS=0; STRIP=0; SRC="$REPO"; CLEAN=0; LIBRARY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) PROFILE="${2:?--profile needs a name}"; shift 2 ;;
        --profile=*) PROFILE="${1#*=}"; shift ;;
        --tests) TESTS=1; shift ;;
        --strip) STRIP=1; shift ;;
        --src) SRC="$(cd "${2:?--src needs a directory}" && pwd)"; shift 2 ;;
        --clean) CLEAN=1; shift ;;
        --library) LIBRARY=1; shift ;;
        -h|--help) usage 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$OUT" ] || die "only one OUT_DIR, got '$OUT' and '$1'"; OUT="$1"; shift ;;
    esac
done

# ---------------------------------------------------------------------------------------------
# Mounts: only /proc and a read-only /sys go into the root (debootstrap made the /dev nodes), so
# deleting the cache by hand can never reach the host's /dev. Unmounted again on every exit.
MOUNTED=()
mount_root() {
    local m
    for m in proc sys; do
        if ! mountpoint -q "$ROOT/$m"; then
            # Registered for unmounting as soon as it exists (a failure after it still unmounts),
            # and /sys never left writable.
            if [ "$m" = proc ]; then mount -t proc proc "$ROOT/proc"; else mount --bind /sys "$ROOT/sys"; fi
            MOUNTED+=("$ROOT/$m")
            if [ "$m" = sys ]; then mount -o remount,bind,ro "$ROOT/sys" || die "cannot make $ROOT/sys read-only"; fi
        fi
    done
}
umount_root() {
    local m
    for m in "${MOUNTED[@]+"${MOUNTED[@]}"}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    MOUNTED=()
}
trap umount_root EXIT
trap 'exit 130' INT TERM

in_root() {  # run a command inside the root, with a clean environment
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive TERM="${TERM:-dumb}" "$@"
}

# ---------------------------------------------------------------------------------------------
if [ "$CLEAN" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "--clean must run as root (the cache holds a chroot owned by root)"
    for m in proc sys dev; do mountpoint -q "$ROOT/$m" 2>/dev/null && { umount "$ROOT/$m" || die "cannot unmount $ROOT/$m"; }; done
    step "Deleting $CACHE"
    rm -rf --one-file-system "$CACHE"
    exit 0
fi
[ -n "$OUT" ] || usage

step "Checking prerequisites"
[ "$(uname -m)" = x86_64 ] || die "this script runs on an x86-64 machine (this one is $(uname -m))"
[ "$(id -u)" = 0 ] || die "run as root (debootstrap and chroot need it): sudo $0 $ORIG_ARGS"
[ -f "$SRC/Package.swift" ] || die "no Package.swift in $SRC"
PROFILE_FILE="$REPO/Targets/profiles/$PROFILE.json"
[ -f "$PROFILE_FILE" ] || die "unknown profile '$PROFILE' (have: $(cd "$REPO/Targets/profiles" && ls *.json | sed 's/\.json$//' | tr '\n' ' '))"
# The profile's swift build flags: the one-line "swift_build_flags" array of its JSON file.
PROFILE_FLAGS=()
flags_line="$(grep -E '^\s*"swift_build_flags"\s*:' "$PROFILE_FILE" || true)"
grep -q '"target_triple": *"aarch64' "$PROFILE_FILE" || die "profile $PROFILE is not an aarch64 profile"
while IFS= read -r f; do [ -n "$f" ] && PROFILE_FLAGS+=("$f"); done < <(printf '%s\n' "${flags_line#*:}" | grep -o '"[^"]*"' | tr -d '"')
info "profile $PROFILE: ${PROFILE_FLAGS[*]:-(no extra flags)}"

need_pkgs=()
for tool in debootstrap:debootstrap rsync:rsync file:file chroot:coreutils flock:util-linux mountpoint:util-linux dpkg-deb:dpkg; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need_pkgs+=("${tool#*:}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing tools, install the Debian packages: ${need_pkgs[*]}"
    info "installing missing host packages: ${need_pkgs[*]} (apt-get install ${need_pkgs[*]})"
    mkdir -p "$CACHE"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}"; } >"$CACHE/host-apt.log" 2>&1 \
        || die "apt-get install ${need_pkgs[*]} failed; see $CACHE/host-apt.log"
fi
[ -f /usr/share/debootstrap/scripts/$SUITE ] || die "this debootstrap does not know '$SUITE'; install a newer debootstrap (Debian 12's 1.0.128 knows it)"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -n 9 || { info "another build.sh holds $CACHE/.lock; waiting"; flock 9; }

# The Debian mirror: the URI that serves this machine's own release in its apt configuration.
find_mirror() {
    local codename="" f
    codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
    [ -n "$codename" ] || return 0
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v want="$codename" '
            function flush() { if (isdeb && hit && uri != "") { print uri; found = 1; exit } isdeb = 0; hit = 0; uri = "" }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]*#/ { next }
            tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") isdeb = 1 }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == want) hit = 1 }
            tolower($1) == "enabled:" && tolower($2) == "no" { isdeb = 0 }
            END { if (!found) flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v want="$codename" '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1) == want) print $i }' "$f"
    done
}
MIRROR="${MVQ_DEBIAN_MIRROR:-$(find_mirror | grep -E '^(https?|file):' | head -n1)}"
MIRROR="${MIRROR%/}"
[ -n "$MIRROR" ] || die "could not find a Debian mirror in /etc/apt (no deb source for this machine's release); set MVQ_DEBIAN_MIRROR=<a Debian mirror URL>"
info "Debian mirror: $MIRROR (suite $SUITE)"

# ---------------------------------------------------------------------------------------------
if [ ! -f "$ROOT$STATE_IN/base.ok" ]; then
    step "Creating the $SUITE amd64 root with debootstrap (about a minute)"
    rm -rf --one-file-system "$ROOT"
    mkdir -p "$CACHE"
    debootstrap --variant=minbase --arch=amd64 "$SUITE" "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $CACHE/debootstrap.log"
    echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
    mkdir -p "$ROOT$STATE_IN"; touch "$ROOT$STATE_IN/base.ok"
else
    info "reusing the $SUITE amd64 root at $ROOT"
fi
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
mount_root

if [ ! -f "$ROOT$STATE_IN/toolchain.ok" ]; then
    step "Installing Debian's Swift toolchain in the root: ${HOST_PKGS[*]} (about 450 MB)"
    in_root dpkg --add-architecture arm64
    { in_root apt-get update -q && in_root apt-get install -y -q --no-install-recommends "${HOST_PKGS[@]}"; } \
        >"$CACHE/toolchain.log" 2>&1 || die "apt-get install in the root failed; see $CACHE/toolchain.log"
    in_root apt-get clean
    touch "$ROOT$STATE_IN/toolchain.ok"
else
    info "reusing the Swift toolchain in the root"
fi
SWIFT_VERSION="$(in_root env LD_LIBRARY_PATH=/usr/libexec/swift/lib/swift/linux swift --version 2>&1 | grep -m1 -o 'Swift version [0-9.]*' || true)"
case "$SWIFT_VERSION" in
    "Swift version 6.0"*) info "compiler: $SWIFT_VERSION (Debian swiftlang $(in_root dpkg-query -W -f='${Version}' swiftlang))" ;;
    *) die "expected Debian's Swift 6.0.x in the root, found '${SWIFT_VERSION:-nothing}'" ;;
esac

SYS="$ROOT$SYSROOT_IN"
if [ ! -f "$ROOT$STATE_IN/sysroot.ok" ]; then
    step "Downloading the arm64 packages for the sysroot: ${ARM64_PKGS[*]}"
    rm -rf --one-file-system "$SYS" "$ROOT/var/cache/mvq-arm64-debs"
    mkdir -p "$ROOT/var/cache/mvq-arm64-debs"
    in_root sh -c 'cd /var/cache/mvq-arm64-debs && apt-get download -q "$@"' sh "${ARM64_PKGS[@]}" \
        >"$CACHE/sysroot.log" 2>&1 || die "apt-get download of the arm64 packages failed; see $CACHE/sysroot.log"
    step "Unpacking them into $SYSROOT_IN (dpkg-deb -x)"
    mkdir -p "$SYS/usr/lib" "$SYS/usr/bin"
    ln -sfn usr/lib "$SYS/lib"; ln -sfn usr/bin "$SYS/bin"      # merged /usr, as on trixie
    for deb in "$ROOT"/var/cache/mvq-arm64-debs/*.deb; do
        info "  $(basename "$deb")"
        dpkg-deb -x "$deb" "$SYS"
    done
    # Not needed for cross-linking: the arm64 compiler binaries and tool libraries (~1.4 GB).
    rm -rf "$SYS/usr/libexec/swift/bin" "$SYS/usr/libexec/swift/lib/swift/host" \
        "$SYS"/usr/libexec/swift/lib/liblldb* "$SYS"/usr/libexec/swift/lib/libsourcekitdInProc* "$SYS"/usr/libexec/swift/lib/libLTO*
    rm -rf "$ROOT/var/cache/mvq-arm64-debs"
    # Silences swift-driver's "Could not read SDKSettings.json for SDK" warning.
    printf '{"Version":"13.0","CanonicalName":"debian-trixie-aarch64","DisplayName":"Debian trixie arm64 sysroot"}\n' >"$SYS/SDKSettings.json"
    mkdir -p "$ROOT$ICU_IN"
    for lib in icui18nswift icuucswift icudataswift; do printf '!<arch>\n' >"$ROOT$ICU_IN/lib$lib.a"; done
    for f in usr/lib/aarch64-linux-gnu/libc.a usr/lib/aarch64-linux-gnu/crt1.o usr/lib/gcc/aarch64-linux-gnu/14/crtbeginT.o \
             usr/libexec/swift/lib/swift_static/linux/libswiftCore.a usr/libexec/swift/lib/swift_static/linux/libdispatch.a \
             usr/libexec/swift/lib/swift_static/linux/static-executable-args.lnk; do
        [ -e "$SYS/$f" ] || die "the sysroot lacks $f after unpacking; see $CACHE/sysroot.log"
    done
    in_root dpkg-query -W -f='${Package}:${Architecture} ${Version}\n' swiftlang >"$ROOT$STATE_IN/sysroot.ok"
    info "sysroot: $(du -sh "$SYS" | cut -f1)"
else
    info "reusing the arm64 sysroot at $SYS"
fi

# ---------------------------------------------------------------------------------------------
step "Copying the package from $SRC into the root ($WORK_IN)"
mkdir -p "$ROOT$WORK_IN"
# The whole package tree (Package.swift, Sources, Tests, and data such as Calibration/ that code may
# find through #filePath), less VCS and build state; the copy's own .build-* dirs are kept, so
# SwiftPM builds incrementally (rsync keeps the modification times of unchanged files).
rsync -a --delete --exclude '/.git' --exclude '/.build*' --exclude '/.swiftpm' --exclude '/Targets/raspberry-pi/.cache' \
    --exclude '/.ci-*.log' "$SRC/" "$ROOT$WORK_IN/"
info "$(find "$ROOT$WORK_IN/Sources" -type f | wc -l) source files"

S=$SYSROOT_IN
CROSS_FLAGS=(--triple "$TRIPLE" --sdk "$S"
    -Xswiftc -sdk -Xswiftc "$S"
    -Xswiftc -use-ld=lld -Xlinker "--sysroot=$S"
    -Xlinker "-L$S/usr/lib/aarch64-linux-gnu" -Xlinker "-L$S/usr/lib/gcc/aarch64-linux-gnu/14"
    -Xswiftc -Xclang-linker -Xswiftc "-B$S/usr/lib/gcc/aarch64-linux-gnu/14"
    -Xswiftc -Xclang-linker -Xswiftc "-B$S/usr/lib/aarch64-linux-gnu")
STATIC_FLAGS=(-Xswiftc -resource-dir -Xswiftc "$S/usr/libexec/swift/lib/swift_static"
    -Xswiftc -static-executable -Xlinker "-L$ICU_IN"
    -Xswiftc -Xclang-linker -Xswiftc -Wno-unused-command-line-argument)  # clang's "-pie unused" with -static
JOBS=(); [ -n "${MVQ_JOBS:-}" ] && JOBS=(-j "$MVQ_JOBS")
# --strip: lld drops symbols and debug info at link time (the x86 binutils cannot strip aarch64).
[ "$STRIP" = 1 ] && STATIC_FLAGS+=(-Xlinker --strip-all)
SCRATCH="$WORK_IN/.build-$PROFILE"

run_swift_build() {  # log file, then swift build arguments
    local log="$1"; shift
    set +e
    in_root env LD_LIBRARY_PATH=/usr/libexec/swift/lib/swift/linux sh -c 'cd "$0" && exec swift build "$@"' "$WORK_IN" "$@" 2>&1 \
        | tee "$log" | grep --line-buffered -E '^\[[0-9]+/[0-9]+\] (Compiling|Linking)|error:|warning: unre|Build complete' \
        | sed -u 's/^/      /'
    local rc=${PIPESTATUS[0]}
    set -e
    return "$rc"
}

if [ "$LIBRARY" = 1 ]; then
    # The C API as a shared library with the Swift runtime linked in: the static runtime's
    # resource directory and -static-stdlib (not -static-executable), the exports limited to mvq_*.
    step "swift build -c release --product mvquant-c for $TRIPLE, Swift runtime linked in (profile $PROFILE)"
    LIB_FLAGS=(-Xswiftc -resource-dir -Xswiftc "$S/usr/libexec/swift/lib/swift_static" -Xswiftc -static-stdlib
        -Xlinker "-L$ICU_IN" -Xlinker "--version-script=$WORK_IN/Targets/c-api/exports.map" -Xlinker -soname=libmvquant.so)
    [ "$STRIP" = 1 ] && LIB_FLAGS+=(-Xlinker --strip-all)
    run_swift_build "$CACHE/build-lib-$PROFILE.log" -c release --scratch-path "$WORK_IN/.build-lib-$PROFILE" --product mvquant-c \
        "${JOBS[@]}" "${CROSS_FLAGS[@]}" "${LIB_FLAGS[@]}" "${PROFILE_FLAGS[@]}" \
        || die "swift build failed; the full log is $CACHE/build-lib-$PROFILE.log"
    mkdir -p "$OUT/lib" "$OUT/include"
    cp -f "$ROOT$WORK_IN/.build-lib-$PROFILE/$TRIPLE/release/libmvquant-c.so" "$OUT/lib/libmvquant.so.tmp"
    mv -f "$OUT/lib/libmvquant.so.tmp" "$OUT/lib/libmvquant.so"
    cp -f "$SRC/include/mvquant.h" "$OUT/include/mvquant.h"
    desc="$(file -b "$OUT/lib/libmvquant.so")"
    case "$desc" in
        *"ARM aarch64"*"shared object"*|*"ARM aarch64"*"dynamically linked"*) ;;
        *) die "$OUT/lib/libmvquant.so is not an aarch64 shared library: $desc" ;;
    esac
    needed="$(readelf -d "$OUT/lib/libmvquant.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
    case "$needed" in
        *libswift*|*libFoundation*|*libdispatch*|*libBlocksRuntime*) die "$OUT/lib/libmvquant.so needs the Swift runtime: $needed" ;;
    esac
    step "Done in $(( $(date +%s) - T0 ))s"
    info "$OUT/lib/libmvquant.so: $(du -h "$OUT/lib/libmvquant.so" | cut -f1), $desc"
    info "needs: $needed"
    exit 0
fi

step "swift build -c release for $TRIPLE, statically linked (profile $PROFILE)"
run_swift_build "$CACHE/build-$PROFILE.log" -c release --scratch-path "$SCRATCH" --product mvquant "${JOBS[@]}" \
    "${CROSS_FLAGS[@]}" "${STATIC_FLAGS[@]}" "${PROFILE_FLAGS[@]}" \
    || die "swift build failed; the full log is $CACHE/build-$PROFILE.log"

mkdir -p "$OUT"
BIN="$ROOT$SCRATCH/$TRIPLE/release/mvquant"
cp -f "$BIN" "$OUT/mvquant.tmp" && mv -f "$OUT/mvquant.tmp" "$OUT/mvquant"
desc="$(file -b "$OUT/mvquant")"
case "$desc" in
    *"ARM aarch64"*"statically linked"*) ;;
    *) die "$OUT/mvquant is not a static aarch64 executable: $desc" ;;
esac

if [ "$TESTS" = 1 ]; then
    # XCTest exists only as a shared library in Debian's swiftlang, so the test bundle is linked
    # dynamically against the sysroot's Swift runtime; test-aarch64.sh runs it with qemu -L.
    step "swift build --build-tests -c release for $TRIPLE (dynamic; XCTest has no static library)"
    run_swift_build "$CACHE/build-tests.log" -c release --build-tests --scratch-path "$WORK_IN/.build-tests" "${JOBS[@]}" \
        -Xswiftc -enable-testing "${CROSS_FLAGS[@]}" -Xswiftc -resource-dir -Xswiftc "$S/usr/libexec/swift/lib/swift" \
        || die "swift build --build-tests failed; the full log is $CACHE/build-tests.log"
    XCTEST="$ROOT$WORK_IN/.build-tests/$TRIPLE/release/mvquantPackageTests.xctest"
    cp -f "$XCTEST" "$OUT/mvquantPackageTests.xctest"
    info "test bundle: $OUT/mvquantPackageTests.xctest (run: Targets/raspberry-pi/test-aarch64.sh)"
fi

step "Done in $(( $(date +%s) - T0 ))s"
info "$OUT/mvquant: $(du -h "$OUT/mvquant" | cut -f1), $desc"
info "copy it to the Pi and run it:  scp $OUT/mvquant pi@raspberrypi:  &&  ssh pi@raspberrypi ./mvquant --help"
