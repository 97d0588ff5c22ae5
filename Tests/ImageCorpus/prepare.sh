#!/usr/bin/env bash
# Prepares the image-decoding conformance corpus for CorpusConformanceTests (test time only; the
# product never depends on any of this):
#   1. pip downloads the source distributions of Pillow 11.0.0 and pypng 0.20220715.0, whose
#      Tests/images and code/pngsuite.py hold the images;
#   2. a throw-away venv gets Pillow 11.0.0 (a wheel is fine: it is only the reference decoder);
#   3. make_reference.py extracts the images and writes Pillow's decodes and a manifest.
# Usage: prepare.sh CACHE_DIR. Prints the corpus folder (for MVQUANT_IMAGE_CORPUS) on stdout and
# progress on stderr. When a step cannot be done (no Python, registry unreachable) it prints
# "SKIP image corpus: <reason>" on stderr and exits 1, and the test then skips.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${1:?usage: prepare.sh CACHE_DIR}"
PILLOW=11.0.0
PYPNG=0.20220715.0
skip() { echo "SKIP image corpus: $*" >&2; exit 1; }
log() { echo "image corpus: $*" >&2; }
mkdir -p "$cache" || skip "cannot create $cache"
cache="$(cd "$cache" && pwd)"

python=$(command -v python3 || true)
if [ -z "$python" ] || ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    log "installing python3-venv (Debian package)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null) \
      || skip "could not install python3-venv"
    python=$(command -v python3 || true)
  fi
  [ -n "$python" ] || skip "no python3"
fi

venv="$cache/venv-pillow-$PILLOW"
if ! "$venv/bin/python" -c "import PIL, sys; sys.exit(PIL.__version__ != '$PILLOW')" 2>/dev/null; then
  log "creating a venv with Pillow $PILLOW"
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2 || skip "python3 -m venv failed"
  "$venv/bin/pip" install -q --disable-pip-version-check "pillow==$PILLOW" >&2 \
    || skip "pip could not install pillow==$PILLOW (is the package registry reachable?)"
fi

sdists="$cache/sdist"
pillow_sdist="$sdists/pillow-$PILLOW.tar.gz"
pypng_sdist="$sdists/pypng-$PYPNG.tar.gz"
if [ ! -f "$pillow_sdist" ] || [ ! -f "$pypng_sdist" ]; then
  log "downloading the Pillow $PILLOW and pypng $PYPNG source distributions"
  "$venv/bin/pip" download -q --disable-pip-version-check --no-binary :all: --no-deps \
      -d "$sdists" "pillow==$PILLOW" "pypng==$PYPNG" >&2 \
    || skip "pip download of the sdists failed (is the package registry reachable?)"
  [ -f "$pillow_sdist" ] && [ -f "$pypng_sdist" ] || skip "pip download did not give $pillow_sdist and $pypng_sdist"
fi

# The references are rebuilt when the script that makes them changes.
corpus="$cache/corpus"
stamp="$(cat "$here/make_reference.py" "$pillow_sdist" "$pypng_sdist" | cksum | cut -d' ' -f1)"
if [ "$(cat "$corpus/stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$corpus/manifest.json" ]; then
  rm -rf "$corpus"
  "$venv/bin/python" -W ignore "$here/make_reference.py" --pillow-sdist "$pillow_sdist" --pypng-sdist "$pypng_sdist" \
      --out "$corpus" >&2 || skip "make_reference.py failed"
  echo "$stamp" > "$corpus/stamp"
fi
echo "$corpus"
