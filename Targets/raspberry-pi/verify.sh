#!/usr/bin/env bash
# Checks that the aarch64 build of mvquant computes exactly what the x86-64 build computes:
# runs the static aarch64 binary under qemu-aarch64-static as a Cortex-A72 (Raspberry Pi 4: NEON)
# and as a Cortex-A76 (Raspberry Pi 5: NEON + SDOT), and compares its output files byte for byte
# with those of `swift build -c release` on this machine.
#
#   sudo Targets/raspberry-pi/verify.sh [--bin PATH] [--per-class N] [--src DIR]
#
#   --bin PATH      the aarch64 binary to check (default: build one with build.sh from the same
#                   snapshot of the sources as the x86-64 reference)
#   --per-class N   images per CIFAR-10 class for the int8 check (default 10: 100 images)
#   --src DIR       the package to snapshot (default: this repository)
#   --model M.mvq   use this int8 model instead of calibrating one
#
# Checks, each PASS / FAIL / SKIP (a command the CLI does not have yet is skipped, not failed):
#   help         `mvquant --help` runs on both CPUs and prints what x86-64 prints
#   inspect      `mvquant inspect` of a float checkpoint and of the int8 model: identical text
#   calibrate    `mvquant calibrate --output M.mvq` (x86-64, once; the embedded default model)
#   int8 images  `mvquant infer --model M.mvq --images ...` on the first N images of each class
#   int8 golden  `mvquant infer --model M.mvq --input G` for each ../shared/golden/*.safetensors
#   seg int8     segmentation: the CIFAR-10 mosaic DeepLabV3 (output stride 8) and the reference
#                DeepLabV3-XXS (output stride 16) calibrated on x86-64, then `infer` of logits and
#                label maps on mosaics and on a golden input
#   kernels      `mvquant bench --model M.mvq --verbose` names NEON on the A72, SDOT on the A76
#   float golden (information only) the float path on the golden inputs: bit-exact or max |diff|
# Exits non-zero when any check fails. Outputs are kept in Targets/raspberry-pi/.cache/verify/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${MVQ_PI_CACHE:-$HERE/.cache}"
V="$CACHE/verify"
QEMU_CPUS=(cortex-a72 cortex-a76)
RUN_TIMEOUT="${MVQ_VERIFY_TIMEOUT:-1800}"   # seconds per command

T0=$(date +%s)
step() { printf '\n[%s +%4ss] == %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - T0 ))" "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf '\nverify.sh: error: %s\n' "$*" >&2; exit 2; }

BIN=""; PER_CLASS=10; SRC="$REPO"; GIVEN_MODEL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$(realpath "${2:?--bin needs a path}")"; shift 2 ;;
        --per-class) PER_CLASS="${2:?}"; shift 2 ;;
        --src) SRC="$(cd "${2:?}" && pwd)"; shift 2 ;;
        --model) GIVEN_MODEL="$(realpath "${2:?}")"; [ -f "$GIVEN_MODEL" ] || die "no model $2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

RESULTS=(); FAILS=0
record() {  # STATUS NAME DETAIL
    local d="${3//$'\n'/ | }"
    RESULTS+=("$(printf '%-4s  %-28s %s' "$1" "$2" "$d")")
    [ "$1" = FAIL ] && FAILS=$((FAILS + 1))
    printf '    -> %s %s: %s\n' "$1" "$2" "$d"
}

# ---------------------------------------------------------------------------------------------
step "Checking prerequisites"
[ "$(uname -m)" = x86_64 ] || die "run this on the x86-64 build machine"
if ! command -v qemu-aarch64-static >/dev/null; then
    [ "$(id -u)" = 0 ] || die "qemu-aarch64-static is missing: apt-get install qemu-user-static"
    info "installing qemu-user-static (apt-get install qemu-user-static)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static >/dev/null || die "apt-get install qemu-user-static failed"
fi
QEMU_CPU_LIST="$(qemu-aarch64-static -cpu help 2>&1 || true)"
for c in "${QEMU_CPUS[@]}"; do
    grep -qw "$c" <<<"$QEMU_CPU_LIST" || die "this qemu-aarch64-static has no -cpu $c (Debian 12's qemu 7.2 has)"
done
for t in rsync cmp timeout; do command -v $t >/dev/null || die "$t is missing (apt-get install rsync diffutils coreutils)"; done
HOST_SWIFT="$(command -v swift || true)"
[ -n "$HOST_SWIFT" ] || { [ -x /opt/swift/usr/bin/swift ] && HOST_SWIFT=/opt/swift/usr/bin/swift; }
[ -n "$HOST_SWIFT" ] || die "no host swift (PATH or /opt/swift/usr/bin/swift) for the x86-64 reference build"
info "host swift: $HOST_SWIFT ($("$HOST_SWIFT" --version 2>&1 | grep -m1 -o 'Swift version [0-9.]*'))"
SHARED="$(realpath -m "${MVQUANT_SHARED:-$REPO/../shared}")"
[ -d "$SHARED" ] || info "note: $SHARED is absent; checks that need its images and golden files will use the repo's or skip"

# One snapshot of the sources for both builds, so both binaries come from the same code.
step "Snapshotting the sources of $SRC into $V/src"
mkdir -p "$V/src" "$V/out"
rsync -a --delete --exclude '/.git' --exclude '/.build*' --exclude '/.swiftpm' --exclude '/Targets/raspberry-pi/.cache' \
    --exclude '/.ci-*.log' "$SRC/" "$V/src/"

step "x86-64 reference: swift build -c release"
( cd "$V/src" && "$HOST_SWIFT" build -c release --product mvquant --scratch-path "$V/src/.build" ) >"$V/x86-build.log" 2>&1 \
    || { tail -30 "$V/x86-build.log"; die "the x86-64 build failed; see $V/x86-build.log"; }
X86="$V/src/.build/release/mvquant"
info "$X86: $(file -b "$X86" | cut -d, -f1-2)"

if [ -z "$BIN" ]; then
    step "aarch64 binary: build.sh from the same snapshot"
    "$HERE/build.sh" "$CACHE/out" --src "$V/src" || die "build.sh failed"
    BIN="$CACHE/out/mvquant"
fi
[ -f "$BIN" ] || die "no aarch64 binary at $BIN"
desc="$(file -b "$BIN")"
case "$desc" in *"ARM aarch64"*"statically linked"*) info "$BIN: $desc" ;; *) die "$BIN is not a static aarch64 executable: $desc" ;; esac

# run TAG OUTFILE-PREFIX ARGS...: TAG is x86 or a qemu CPU; stdout/stderr/exit code go to PREFIX.{out,err,rc}
run() {
    local tag="$1" pre="$2"; shift 2
    local rc=0
    if [ "$tag" = x86 ]; then
        (cd "$V/src" && timeout "$RUN_TIMEOUT" "$X86" "$@") >"$pre.out" 2>"$pre.err" || rc=$?
    else
        (cd "$V/src" && timeout "$RUN_TIMEOUT" qemu-aarch64-static -cpu "$tag" "$BIN" "$@") >"$pre.out" 2>"$pre.err" || rc=$?
    fi
    echo "$rc" >"$pre.rc"
    return "$rc"
}
# compare NAME FILE-SUFFIX: cmp $V/out/NAME.x86.SUFFIX with the two qemu runs' files; records the result
compare() {
    local name="$1" suffix="$2" c ok=1 detail=""
    for c in "${QEMU_CPUS[@]}"; do
        local a="$V/out/$name.x86$suffix" b="$V/out/$name.$c$suffix"
        if [ "$(cat "$V/out/$name.$c.rc")" != 0 ]; then
            ok=0; detail+="$c exited $(cat "$V/out/$name.$c.rc") ($(tail -c 300 "$V/out/$name.$c.err" | tr '\n' ' ')); "
        elif ! cmp -s "$a" "$b"; then
            ok=0; detail+="$c differs ($(cmp "$a" "$b" 2>&1 | head -1)); "
        else
            detail+="$c identical; "
        fi
    done
    if [ "$ok" = 1 ]; then record PASS "$name" "${detail%; } ($(wc -c <"$V/out/$name.x86$suffix") bytes)"; else record FAIL "$name" "${detail%; }"; fi
}
# all3 NAME SUFFIX ARGS...: run on x86 then both CPUs; ARGS may contain @OUT@, replaced by the run's output path
all3() {
    local name="$1" suffix="$2"; shift 2
    local tag args a
    for tag in x86 "${QEMU_CPUS[@]}"; do
        args=()
        for a in "$@"; do args+=("${a//@OUT@/$V/out/$name.$tag$suffix}"); done
        rm -f "$V/out/$name.$tag$suffix"
        run "$tag" "$V/out/$name.$tag" "${args[@]}" || true
    done
}

# ---------------------------------------------------------------------------------------------
step "help: mvquant --help on x86-64, cortex-a72, cortex-a76"
all3 help .out --help
if [ "$(cat "$V/out/help.x86.rc")" != 0 ]; then
    record FAIL help "the x86-64 binary's --help exited $(cat "$V/out/help.x86.rc")"
else
    compare help .out
fi
HELP="$(cat "$V/out/help.x86.out" "$V/out/help.x86.err")"
has_cmd() { grep -qE "^[[:space:]]+$1([[:space:]]|$)" <<<"$HELP"; }
cmd_help() { (cd "$V/src" && "$X86" "$1" --help 2>&1) || true; }
info "commands in --help: $(grep -oE '^[[:space:]]+[a-z][a-z0-9-]+[[:space:]]' <<<"$HELP" | tr -d ' ' | tr '\n' ' ')"

# Golden inputs and the float checkpoints they belong to (mobilevit_xxs_256x256 -> reference/mobilevit_xxs).
GOLDEN=()
[ -d "$SHARED/golden" ] && while IFS= read -r g; do GOLDEN+=("$g"); done < <(find "$SHARED/golden" -maxdepth 1 -name '*.safetensors' | sort)

step "inspect: a float checkpoint"
FLOAT_REF="$SHARED/models/reference/mobilevit_xxs"
if ! has_cmd inspect; then record SKIP inspect-float "no 'inspect' command yet"
elif [ ! -f "$FLOAT_REF/config.json" ]; then record SKIP inspect-float "no $FLOAT_REF"
else
    all3 inspect-float .out inspect --model "$FLOAT_REF"
    if [ "$(cat "$V/out/inspect-float.x86.rc")" != 0 ]; then record SKIP inspect-float "x86-64 exited $(cat "$V/out/inspect-float.x86.rc"): $(head -c 200 "$V/out/inspect-float.x86.err")"
    else compare inspect-float .out; fi
fi

# ---------------------------------------------------------------------------------------------
MODEL="$V/out/model.mvq"
INT8=1
step "calibrate: mvquant calibrate --output model.mvq (x86-64, the embedded default model)"
if [ -n "$GIVEN_MODEL" ] && has_cmd infer; then
    cp -f "$GIVEN_MODEL" "$MODEL"
    record SKIP calibrate "using the given model $GIVEN_MODEL"
elif ! has_cmd calibrate || ! has_cmd infer; then
    INT8=0
    record SKIP calibrate "the CLI has no 'calibrate'/'infer' yet: int8 checks skipped"
else
    rm -f "$MODEL"
    if run x86 "$V/out/calibrate.x86" calibrate --output "$MODEL" && [ -s "$MODEL" ]; then
        record PASS calibrate "$(wc -c <"$MODEL") bytes, $(tail -1 "$V/out/calibrate.x86.out")"
    else
        INT8=0
        record FAIL calibrate "the x86-64 build itself failed (not a cross-build problem), exit $(cat "$V/out/calibrate.x86.rc"): $(tail -c 400 "$V/out/calibrate.x86.err")"
    fi
fi

if [ "$INT8" = 1 ]; then
    step "inspect: the int8 model"
    if has_cmd inspect; then all3 inspect-int8 .out inspect --model "$MODEL"; compare inspect-int8 .out
    else record SKIP inspect-int8 "no 'inspect' command"; fi

    step "int8 images: infer on the first $PER_CLASS images of each class"
    IMGROOT=""
    for d in "$SHARED/data/cifar10/val" "$V/src/Calibration/val"; do [ -d "$d" ] && { IMGROOT="$d"; break; }; done
    if ! grep -q -- '--images' <<<"$(cmd_help infer)"; then
        record SKIP int8-images "'infer' has no --images option yet"
    elif [ -z "$IMGROOT" ]; then
        record SKIP int8-images "no image set ($SHARED/data/cifar10/val or Calibration/val)"
    else
        IMAGES=()
        for cls in "$IMGROOT"/*/; do
            while IFS= read -r f; do IMAGES+=("$f"); done < <(find "$cls" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.ppm' \) | sort | head -n "$PER_CLASS")
        done
        info "${#IMAGES[@]} images from $IMGROOT"
        IMAGE_ARGS=(); for f in "${IMAGES[@]}"; do IMAGE_ARGS+=(--images "$f"); done   # --images is repeatable
        all3 int8-images .safetensors infer --model "$MODEL" "${IMAGE_ARGS[@]}" --output @OUT@
        if [ "$(cat "$V/out/int8-images.x86.rc")" != 0 ]; then record FAIL int8-images "x86-64 exited $(cat "$V/out/int8-images.x86.rc"): $(tail -c 300 "$V/out/int8-images.x86.err")"
        else compare int8-images .safetensors; fi
    fi

    step "int8 golden: infer --input on each golden pixel_values"
    [ ${#GOLDEN[@]} -gt 0 ] || record SKIP int8-golden "no $SHARED/golden/*.safetensors"
    for g in "${GOLDEN[@]}"; do
        n="int8-$(basename "$g" .safetensors)"
        all3 "$n" .safetensors infer --model "$MODEL" --input "$g" --output @OUT@
        if [ "$(cat "$V/out/$n.x86.rc")" != 0 ]; then record SKIP "$n" "x86-64 refused this input: $(tail -c 200 "$V/out/$n.x86.err" | tr '\n' ' ')"
        else compare "$n" .safetensors; fi
    done

    step "seg int8: segmentation models' logits and label maps"
    SEG_MODEL="$SHARED/models/deeplabv3_mobilevit_xxs_cifar10_mosaic"; SEG_SET="$SHARED/data/cifar10_seg"
    SEG_REF="$SHARED/models/reference/deeplabv3_mobilevit_xxs"; SEG_GOLDEN="$SHARED/golden/deeplabv3_mobilevit_xxs_200x300.safetensors"
    if ! has_cmd segment; then record SKIP seg-int8 "no segmentation support ('segment' command) yet"
    elif [ ! -d "$SEG_MODEL" ] || [ ! -d "$SEG_SET/val/images" ]; then record SKIP seg-int8 "no $SEG_MODEL or $SEG_SET"
    else
        if run x86 "$V/out/seg-calibrate.x86" calibrate --model "$SEG_MODEL" --images "$SEG_SET/calib" --count 16 --no-eval \
               --report-images 0 --output "$V/out/seg.mvq" \
           && run x86 "$V/out/seg-ref-calibrate.x86" calibrate --model "$SEG_REF" --images "$SEG_SET/calib" --count 8 --no-eval \
               --report-images 0 --size 200x300 --output "$V/out/seg-ref.mvq"; then
            SEG_IMAGES=(); while IFS= read -r f; do SEG_IMAGES+=(--images "$f"); done < <(find "$SEG_SET/val/images" -type f | sort | head -n 8)
            all3 seg-int8-mosaics .safetensors infer --model "$V/out/seg.mvq" "${SEG_IMAGES[@]}" --output @OUT@
            compare seg-int8-mosaics .safetensors
            all3 seg-int8-golden-os16 .safetensors infer --model "$V/out/seg-ref.mvq" --input "$SEG_GOLDEN" --output @OUT@
            compare seg-int8-golden-os16 .safetensors
        else
            record FAIL seg-int8 "calibrating the segmentation models on x86-64 failed: $(tail -c 300 "$V/out/seg-calibrate.x86.err" "$V/out/seg-ref-calibrate.x86.err" 2>/dev/null | tr '\n' ' ')"
        fi
    fi

    step "kernels: bench --verbose names the selected ISA"
    if ! has_cmd bench; then record SKIP kernels "no 'bench' command yet"
    else
        BENCH_ARGS=(bench --model "$MODEL" --verbose)
        bh="$(cmd_help bench)"   # emulated timings mean nothing: as few runs as the CLI allows
        grep -q -- '--iterations' <<<"$bh" && BENCH_ARGS+=(--iterations 1)
        grep -q -- '--warmup' <<<"$bh" && BENCH_ARGS+=(--warmup 0)
        for c in "${QEMU_CPUS[@]}"; do run "$c" "$V/out/bench.$c" "${BENCH_ARGS[@]}" || true; done
        a72="$(cat "$V/out/bench.cortex-a72.out" "$V/out/bench.cortex-a72.err")"
        a76="$(cat "$V/out/bench.cortex-a76.out" "$V/out/bench.cortex-a76.err")"
        detail="A72 exit $(cat "$V/out/bench.cortex-a72.rc"), A76 exit $(cat "$V/out/bench.cortex-a76.rc")"
        if [ "$(cat "$V/out/bench.cortex-a72.rc")" != 0 ] || [ "$(cat "$V/out/bench.cortex-a76.rc")" != 0 ]; then
            record FAIL kernels "$detail; see $V/out/bench.*.err"
        else
            # The selected kernel set: "... kernels: NAME ..." lines when the log has them, else any mention.
            selected() { { grep -ioE 'int8 kernels?: *[a-z0-9_+-]+' <<<"$1" || grep -ioE 'kernels?: *[a-z0-9_+-]+' <<<"$1" || true; } | head -n1 | sed 's/.*: *//'; }
            sel72="$(selected "$a72")"; sel76="$(selected "$a76")"
            [ -n "$sel72" ] || sel72="$(grep -ioE 'neon[a-z0-9_]*' <<<"$a72" | head -n1 || true)"
            [ -n "$sel76" ] || sel76="$(grep -ioE 'neondot|sdot|dotprod' <<<"$a76" | head -n1 || true)"
            if ! grep -qi 'neon' <<<"$sel72" || grep -qiE 'dot' <<<"$sel72"; then
                record FAIL kernels "the A72 (no SDOT) should select NEON, its log says '${sel72:-nothing}' ($V/out/bench.cortex-a72.*)"
            elif ! grep -qiE 'neondot|sdot|dotprod' <<<"$sel76"; then
                record FAIL kernels "the A76 should select SDOT (neondot), its log says '${sel76:-nothing}' ($V/out/bench.cortex-a76.*)"
            else
                record PASS kernels "A72 selects $sel72, A76 selects $sel76"
            fi
        fi
    fi
fi

# ---------------------------------------------------------------------------------------------
step "float golden (information only): infer with the float checkpoints"
max_diff() {  # python3 is optional: the largest |difference| between two safetensors' logits
    command -v python3 >/dev/null || { echo "python3 absent"; return; }
    python3 - "$1" "$2" <<'EOF'
import json, struct, sys
def logits(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); t = h['logits']
    s, e = t['data_offsets']; d = b[8 + n + s:8 + n + e]
    return struct.unpack('<%df' % (len(d) // 4), d)
a, b = logits(sys.argv[1]), logits(sys.argv[2])
print('max |diff| %.3g over %d logits' % (max(abs(x - y) for x, y in zip(a, b)), len(a)))
EOF
}
if ! has_cmd infer; then record SKIP float-golden "no 'infer' command yet"
else
    for g in "${GOLDEN[@]}"; do
        base="$(basename "$g" .safetensors)"; ref="$SHARED/models/reference/${base%_*}"
        [ -f "$ref/config.json" ] || { info "$base: no checkpoint $ref"; continue; }
        n="float-$base"
        all3 "$n" .safetensors infer --model "$ref" --input "$g" --output @OUT@
        if [ "$(cat "$V/out/$n.x86.rc")" != 0 ]; then record SKIP "$n" "x86-64 exited $(cat "$V/out/$n.x86.rc")"; continue; fi
        detail=""; st=INFO
        for c in "${QEMU_CPUS[@]}"; do
            if [ "$(cat "$V/out/$n.$c.rc")" != 0 ]; then st=FAIL; detail+="$c exited $(cat "$V/out/$n.$c.rc"); "
            elif cmp -s "$V/out/$n.x86.safetensors" "$V/out/$n.$c.safetensors"; then detail+="$c bit-exact; "
            else detail+="$c $(max_diff "$V/out/$n.x86.safetensors" "$V/out/$n.$c.safetensors"); "; fi
        done
        record "$st" "$n" "${detail%; }"
    done
fi

# ---------------------------------------------------------------------------------------------
step "Summary ($(( $(date +%s) - T0 ))s; outputs in $V/out)"
printf '  %s\n' "${RESULTS[@]}"
npass=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^PASS' || true)
nskip=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^SKIP' || true)
echo
if [ "$FAILS" = 0 ]; then
    echo "verify: PASS ($npass checks passed, $nskip skipped; aarch64 = x86-64 byte for byte where compared)"
else
    echo "verify: FAIL ($FAILS of $((npass + FAILS)) checks failed, $nskip skipped)"
    exit 1
fi
