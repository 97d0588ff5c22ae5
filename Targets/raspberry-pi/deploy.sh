#!/usr/bin/env bash
# Copies the aarch64 mvquant and an int8 model to a Raspberry Pi (64-bit Raspberry Pi OS or any
# aarch64 Linux) over ssh, then runs `mvquant bench` (all cores, then one thread with per-layer
# medians, whose JSON is copied back and set beside Targets/bench/pi_estimate.py's estimate) and
# `mvquant classify` there.
#
#   Targets/raspberry-pi/deploy.sh [--bin PATH] [--dir REMOTE_DIR] [--images DIR] USER@HOST [MODEL.mvq]
#
#   --bin PATH     the binary (default: Targets/raspberry-pi/.cache/out/mvquant, made by build.sh)
#   --dir DIR      where on the Pi (default: mvquant, i.e. ~/mvquant)
#   --images DIR   images to classify, one folder per class or flat (default: the first image of
#                  each class of ../shared/data/cifar10/val, else of Calibration/val)
#   MODEL.mvq      the int8 model (default: the one verify.sh calibrated,
#                  Targets/raspberry-pi/.cache/verify/out/model.mvq)
#
# Needs only ssh/scp on this side and nothing but the binary on the Pi (it is statically linked).
# Set SSH_OPTS for extra options given to both ssh and scp, e.g. SSH_OPTS="-o Port=2222 -i ~/.ssh/pi"
# (not -p: scp spells the port -P), or use ~/.ssh/config.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${MVQ_PI_CACHE:-$HERE/.cache}"
die() { printf 'deploy.sh: error: %s\n' "$*" >&2; exit 1; }
step() { printf '\n[%s] == %s\n' "$(date +%H:%M:%S)" "$*"; }

BIN="$CACHE/out/mvquant"; RDIR=mvquant; IMAGES=""; HOST=""; MODEL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="${2:?}"; shift 2 ;;
        --dir) RDIR="${2:?}"; shift 2 ;;
        --images) IMAGES="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) if [ -z "$HOST" ]; then HOST="$1"; elif [ -z "$MODEL" ]; then MODEL="$1"; else die "too many arguments"; fi; shift ;;
    esac
done
[ -n "$HOST" ] || die "usage: deploy.sh [--bin PATH] [--dir DIR] [--images DIR] USER@HOST [MODEL.mvq]"
[ -f "$BIN" ] || die "no binary at $BIN: run 'sudo Targets/raspberry-pi/build.sh $CACHE/out' first, or pass --bin"
case "$(file -b "$BIN" 2>/dev/null)" in *"ARM aarch64"*) ;; *) die "$BIN is not an aarch64 executable" ;; esac
MODEL="${MODEL:-$CACHE/verify/out/model.mvq}"
[ -f "$MODEL" ] || die "no model at $MODEL: pass one (mvquant calibrate --output model.mvq makes one), or run verify.sh, which calibrates one"

# One ssh connection for every command (one password prompt at most).
CTL="$(mktemp -u /tmp/mvq-ssh.XXXXXX)"
# shellcheck disable=SC2206
SSH=(ssh -o ControlMaster=auto -o "ControlPath=$CTL" -o ControlPersist=120 ${SSH_OPTS:-})
# shellcheck disable=SC2206
SCP=(scp -q -o "ControlPath=$CTL" ${SSH_OPTS:-})
trap '"${SSH[@]}" -O exit "$HOST" >/dev/null 2>&1 || true' EXIT
remote() { "${SSH[@]}" "$HOST" "$@"; }
q() { printf '%q' "$1"; }

step "Checking $HOST"
arch="$(remote uname -m)" || die "cannot ssh to $HOST"
[ "$arch" = aarch64 ] || die "$HOST runs $arch userspace; mvquant needs a 64-bit (aarch64) OS, e.g. Raspberry Pi OS (64-bit)"
remote "cat /proc/device-tree/model 2>/dev/null | tr -d '\\0'; echo; grep -m1 -i '^Features' /proc/cpuinfo; nproc" | sed 's/^/    /'

IMGSRC="$IMAGES"
if [ -z "$IMGSRC" ]; then
    for d in "$REPO/../shared/data/cifar10/val" "$REPO/Calibration/val"; do [ -d "$d" ] && { IMGSRC="$d"; break; }; done
fi
SAMPLES=()
if [ -n "$IMGSRC" ]; then
    if [ -n "$IMAGES" ]; then
        while IFS= read -r f; do SAMPLES+=("$f"); done < <(find "$IMGSRC" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.ppm' \) | sort)
    else
        for cls in "$IMGSRC"/*/; do
            f="$(find "$cls" -maxdepth 1 -type f | sort | sed -n 1p)"; [ -n "$f" ] && SAMPLES+=("$f")  # sed, not head: no SIGPIPE under pipefail
        done
    fi
fi

step "Copying mvquant ($(du -h "$BIN" | cut -f1)), $(basename "$MODEL") and ${#SAMPLES[@]} images to $HOST:$RDIR/"
remote "mkdir -p $(q "$RDIR")/images && rm -f $(q "$RDIR")/images/*"
"${SCP[@]}" "$BIN" "$HOST:$RDIR/mvquant.new"
"${SCP[@]}" "$MODEL" "$HOST:$RDIR/model.mvq"
for f in "${SAMPLES[@]+"${SAMPLES[@]}"}"; do
    # class/name.jpg -> class_name.jpg, so the class stays visible on the Pi
    "${SCP[@]}" "$f" "$HOST:$RDIR/images/$(basename "$(dirname "$f")")_$(basename "$f")"
done
remote "cd $(q "$RDIR") && chmod +x mvquant.new && mv -f mvquant.new mvquant && ./mvquant --help >/dev/null" \
    || die "the binary does not run on $HOST"

step "mvquant bench --model model.mvq --verbose (on $HOST)"
remote "cd $(q "$RDIR") && ./mvquant bench --model model.mvq --verbose" || echo "    (bench failed or is not implemented yet)"

step "mvquant bench --model model.mvq --threads 1 --layers --json bench-layers.json (on $HOST)"
# One thread, per-layer medians: the layout of Targets/bench/pi_estimate.py's estimate, so the two
# can be set side by side (the JSON is copied back and compared when this side can run the estimate).
LAYERS_JSON="$CACHE/bench-layers-${HOST//[^A-Za-z0-9._-]/_}.json"
if remote "cd $(q "$RDIR") && ./mvquant bench --model model.mvq --threads 1 --layers --json bench-layers.json"; then
    mkdir -p "$CACHE"
    "${SCP[@]}" "$HOST:$RDIR/bench-layers.json" "$LAYERS_JSON" && echo "    measured per-layer JSON: $LAYERS_JSON"
    # The estimate for this Pi's core: A76 (Pi 5) when the CPU has SDOT (asimddp), else A72 (Pi 4).
    cpu=a72; remote "grep -qw asimddp /proc/cpuinfo" && cpu=a76
    est=(python3 "$REPO/Targets/bench/pi_estimate.py" --model "$MODEL" --cpu "$cpu" --compare "$LAYERS_JSON")
    if [ -x "$REPO/.build/release/mvquant" ] && command -v python3 >/dev/null && command -v llvm-mca >/dev/null; then
        step "Estimate ($cpu) and measurement side by side"
        "${est[@]}" || echo "    (the estimate failed)"
    else
        echo "    to compare with the estimate (needs .build/release/mvquant, python3, clang, llvm-mca here): ${est[*]}"
    fi
else
    echo "    (bench --layers failed)"
fi

step "mvquant classify (on $HOST)"
# Uses --images when classify's help names it, else passes the files as arguments.
remote "cd $(q "$RDIR") && if ./mvquant classify --help 2>&1 | grep -q -- '--images'; then
            ./mvquant classify --model model.mvq --images images
        else
            ./mvquant classify --model model.mvq images/*
        fi" || echo "    (classify failed or is not implemented yet)"

step "Done: on $HOST, cd $RDIR && ./mvquant --help"
