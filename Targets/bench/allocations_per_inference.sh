#!/usr/bin/env bash
# Heap allocations per inference of `mvquant bench`, by thread count: counts malloc calls with an
# LD_PRELOAD shim over two runs that differ only in their number of iterations, so everything done
# once (loading, planning, warm-up, reporting) cancels out. (From 100 runs up, so that the
# warm-up is the same in both.)
#
#   Targets/bench/allocations_per_inference.sh MODEL.mvq [SIZE] [THREADS...]
#
# Needs a release build (swift build -c release) and a C compiler (cc). Linux/glibc only.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MODEL="${1:?usage: allocations_per_inference.sh MODEL.mvq [SIZE] [THREADS...]}"
SIZE="${2:-256x256}"
shift $(( $# >= 2 ? 2 : 1 ))
THREADS=("$@"); [ ${#THREADS[@]} -gt 0 ] || THREADS=(1 2)
BIN="$ROOT/.build/release/mvquant"
[ -x "$BIN" ] || { echo "no release build at $BIN (swift build -c release)" >&2; exit 1; }

WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/count.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
static long count;
void *malloc(size_t n) {
    static void *(*real)(size_t);
    if (!real) real = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
    return real(n);
}
__attribute__((destructor)) static void report(void) { fprintf(stderr, "mallocs %ld\n", count); }
C
cc -O2 -shared -fPIC -o "$WORK/count.so" "$WORK/count.c" -ldl

mallocs() {  # threads iterations
    LD_PRELOAD="$WORK/count.so" "$BIN" bench --model "$MODEL" --size "$SIZE" --threads "$1" --iterations "$2" 2>&1 >/dev/null \
        | awk '/^mallocs/ {print $2}'
}
for t in "${THREADS[@]}"; do
    a=$(mallocs "$t" 100); b=$(mallocs "$t" 300)
    awk -v t="$t" -v a="$a" -v b="$b" 'BEGIN { printf "threads %s: %.2f allocations per inference (%d over 200 extra runs)\n", t, (b - a) / 200, b - a }'
done
