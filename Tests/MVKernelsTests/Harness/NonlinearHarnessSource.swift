// The C source of the softmax cross-ISA harness (a Swift string so that the test target stays
// Swift-only). NonlinearCrossISAHarnessTests writes it out and compiles it with the system C
// compiler together with nonlinear_avx512.c: once with SIMDe emulating AVX-512 (MV_SIMDE_EMULATION,
// any x86-64 host) and, when the CPU has AVX-512 F/BW/VL, once with the real intrinsics.
enum NonlinearHarnessSource {
    static let harnessC = #"""
// Bit-exactness harness for the softmax rows of nonlinear_avx512.c (and nonlinear_avx2.c). It
// includes nonlinear_avx512.c itself, so one build compiles the kernel with the real intrinsics
// and a -DMV_SIMDE_EMULATION build compiles it (and this file) against SIMDe.
// Usage:
//   harness run avx512|avx2|scalar CASES OUT  every case of CASES through one row function; the
//                                             output rows (n bytes each) go to OUT
//   harness cpu                               exit 0 if this CPU runs AVX-512 F/BW/VL natively
//   harness intrinsics N                      a digest line per intrinsic the kernel uses, over N
//                                             edge-heavy random inputs (emulated = native?)
// CASES: int32 little-endian; a count, then per case the 7 mv_softmax_params fields in order, n,
// rows, in_stride, out_stride, then (rows - 1) * in_stride + n scores.
// Each case's last score ends just before an inaccessible page, as do its last output row and its
// scratch: a masked load or store that touches a masked-off element beyond the data faults. The
// output bytes between rows (stride padding) must come back untouched. For the AVX-512 rows the
// e values the scratch holds are checked too (check_e).
#include "nonlinear_avx512.c"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void mv_softmax_rows_avx2(const int32_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                          int32_t n, int32_t rows, const mv_softmax_params *p, int32_t *scratch);

/// The scalar model of mv_nonlinear_internal.h (what the AVX2 and NEON tails use).
static void softmax_rows_scalar(const int32_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                                int32_t n, int32_t rows, const mv_softmax_params *p, int32_t *scratch) {
    uint16_t *e = (uint16_t *)scratch;
    for (int32_t r = 0; r < rows; r++) {
        const int32_t *s = in + r * in_stride;
        int32_t m = INT32_MIN;
        for (int32_t i = 0; i < n; i++) m = s[i] > m ? s[i] : m;
        const uint64_t sum = mvnl_softmax_tail_exp(s, m, 0, n, e, p);
        uint32_t rr;
        int t1;
        mvnl_softmax_reciprocal(sum, p, &rr, &t1);
        for (int32_t i = 0; i < n; i++) out[r * out_stride + i] = mvnl_softmax_output(e[i], rr, t1, p->output_zero_point);
    }
}

typedef struct { void *base; size_t len; } mapping;

/// `bytes` whose end is the start of an inaccessible page.
static void *guarded(size_t bytes, mapping *m) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), body = (bytes + page - 1) / page * page;
    m->len = body + page;
    m->base = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m->base == MAP_FAILED) { perror("mmap"); exit(2); }
    if (mprotect((char *)m->base + body, page, PROT_NONE)) { perror("mprotect"); exit(2); }
    return (char *)m->base + body - bytes;
}

static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

static int cmp_u16(const void *a, const void *b) { return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b; }

/// White-box, for the AVX-512 rows (mv_nonlinear.h: the scratch holds the row's e as uint16):
/// after a one-row call each 32-block of the scratch holds the e of its 32 scores (in packus
/// order; 0 for the masked-off lanes of the tail), exactly as mvnl_exp_q15 computes them. The codes
/// alone hide most one-unit errors in e.
static int check_e(const int32_t *s, int32_t n, const mv_softmax_params *p, int32_t *scratch, int verbose) {
    int8_t *tmp = malloc((size_t)n);
    mv_softmax_rows_avx512(s, n, tmp, n, n, 1, p, scratch);
    int32_t m = INT32_MIN;
    for (int32_t i = 0; i < n; i++) m = s[i] > m ? s[i] : m;
    int bad = 0;
    for (int32_t b = 0; b < n && !bad; b += 32) {
        uint16_t got[32], want[32];
        memcpy(got, (const uint16_t *)scratch + b, sizeof got);
        for (int32_t i = 0; i < 32; i++)
            want[i] = b + i < n ? (uint16_t)mvnl_exp_q15((uint32_t)m - (uint32_t)s[b + i], p) : 0;
        qsort(got, 32, 2, cmp_u16);
        qsort(want, 32, 2, cmp_u16);
        for (int i = 0; i < 32; i++)
            if (got[i] != want[i]) {
                if (verbose) fprintf(stderr, "e of scores %d..%d differ from mvnl_exp_q15 (sorted: got %u, want %u)\n", b, b + 31, got[i], want[i]);
                bad = 1;
                break;
            }
    }
    free(tmp);
    return bad;
}

typedef void (*rows_fn)(const int32_t *, ptrdiff_t, int8_t *, ptrdiff_t, int32_t, int32_t, const mv_softmax_params *, int32_t *);

static int run(const char *isa, const char *cases_path, const char *out_path) {
    rows_fn fn;
    if (!strcmp(isa, "avx512")) {
#if !defined(MV_SIMDE_EMULATION)
        if (!cpu_has_avx512()) { fprintf(stderr, "this CPU lacks AVX-512 F/BW/VL\n"); return 77; }
#endif
        fn = mv_softmax_rows_avx512;
    } else if (!strcmp(isa, "avx2")) {
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx2")) { fprintf(stderr, "this CPU lacks AVX2\n"); return 77; }
        fn = mv_softmax_rows_avx2;
    } else if (!strcmp(isa, "scalar")) {
        fn = softmax_rows_scalar;
    } else {
        fprintf(stderr, "unknown isa %s\n", isa);
        return 2;
    }
    FILE *f = fopen(cases_path, "rb"), *o = fopen(out_path, "wb");
    if (!f || !o) { perror("fopen"); return 2; }
    int32_t count;
    if (fread(&count, 4, 1, f) != 1) return 2;
    long rows_done = 0, failures = 0;
    for (int32_t c = 0; c < count; c++) {
        int32_t h[10];
        if (fread(h, 4, 10, f) != 10) { fprintf(stderr, "case %d: truncated\n", c); return 2; }
        mv_softmax_params p;
        p.exp_pre_shift = h[0];
        p.exp_left_shift = h[1];
        p.exp_multiplier = (uint32_t)h[2];
        p.output_multiplier = (uint32_t)h[3];
        p.output_shift = h[4];
        p.output_zero_point = h[5];
        const int32_t n = h[6], rows = h[7], in_stride = h[8], out_stride = h[9];
        const size_t in_count = (size_t)(rows - 1) * in_stride + n, out_count = (size_t)(rows - 1) * out_stride + n;
        const size_t scratch_count = 2 * (((size_t)n + 31) & ~(size_t)31);  // IntegerSoftmax.scratchCount: four rows' e
        mapping mi, mo, ms;
        int32_t *in = guarded(in_count * 4, &mi);
        int8_t *out = guarded(out_count, &mo);
        int32_t *scratch = guarded(scratch_count * 4, &ms);
        if (fread(in, 4, in_count, f) != in_count) { fprintf(stderr, "case %d: truncated\n", c); return 2; }
        memset(out, 0x5A, out_count);
        fn(in, in_stride, out, out_stride, n, rows, &p, scratch);
        for (int32_t r = 0; r < rows; r++) {
            fwrite(out + (size_t)r * out_stride, 1, (size_t)n, o);
            if (r + 1 < rows)
                for (int32_t i = n; i < out_stride; i++)
                    if (out[(size_t)r * out_stride + i] != 0x5A) {
                        if (failures < 10) fprintf(stderr, "%s case %d (n %d): row %d padding byte %d overwritten\n", isa, c, n, r, i);
                        failures++;
                        break;
                    }
        }
        if (fn == mv_softmax_rows_avx512)
            for (int32_t r = 0; r < rows; r++)
                if (check_e(in + (size_t)r * in_stride, n, &p, scratch, failures < 10)) {
                    if (failures < 10) fprintf(stderr, "%s case %d (n %d) row %d: wrong e\n", isa, c, n, r);
                    failures++;
                    break;
                }
        rows_done += rows;
        munmap(mi.base, mi.len);
        munmap(mo.base, mo.len);
        munmap(ms.base, ms.len);
    }
    fclose(f);
    if (fclose(o)) { perror("fclose"); return 2; }
    printf("%s: %d cases, %ld rows run%s; %ld failures\n", isa, count, rows_done,
           fn == mv_softmax_rows_avx512 ? " (and each row's e checked)" : "", failures);
    return failures ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Intrinsic digests: every intrinsic of the kernel on edge-heavy inputs (the shims and SIMDe's
// emulation against the hardware, when both builds run).

static uint64_t rng_state = 0x5EED;
static uint64_t rnd(void) {
    rng_state += 0x9E3779B97F4A7C15ull;
    uint64_t z = rng_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// 64 bytes: random, or 16-bit / 32-bit lanes drawn from edge values, small counts and random.
static void edge_fill(void *dst) {
    static const uint16_t e16[] = {0, 1, 2, 5, 11, 15, 16, 17, 31, 32, 0x7FFF, 0x8000, 0x8001, 0xFFFE, 0xFFFF, 0x4000, 2047, 2048, 32766, 32767};
    static const uint32_t e32[] = {0, 1, 15, 16, 31, 32, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000u, 0x80000001u, 0xFFFFFFFFu, 0xFFFFFFFEu, 0x7FFF8000, 0x3FFFFFFF, 65535, 65536, 131071};
    uint8_t *b = dst;
    switch (rnd() % 4) {
    case 0:
        for (int i = 0; i < 64; i++) b[i] = (uint8_t)rnd();
        break;
    case 1:
        for (int i = 0; i < 32; i++) {
            uint64_t r = rnd();
            uint16_t v = r % 3 == 0 ? e16[(r >> 8) % (sizeof e16 / 2)] : r % 3 == 1 ? (uint16_t)((r >> 8) % 40) : (uint16_t)(r >> 16);
            memcpy(b + 2 * i, &v, 2);
        }
        break;
    default:
        for (int i = 0; i < 16; i++) {
            uint64_t r = rnd();
            uint32_t v = r % 3 == 0 ? e32[(r >> 8) % (sizeof e32 / 4)] : r % 3 == 1 ? (uint32_t)((r >> 8) % 70000) : (uint32_t)(r >> 32);
            if (r % 7 == 0) v = (uint32_t)-(int32_t)v;
            memcpy(b + 4 * i, &v, 4);
        }
    }
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

enum { NOPS = 33 };
static const char *const op_names[NOPS] = {
    "sub_epi32", "add_epi32", "mask_loadu_epi32", "min_epu32", "srl_epi32", "mullo_epi32", "packus_epi32",
    "slli_epi16_5", "sub_epi16", "mulhi_epu16", "srlv_epi16", "srli_epi16_11", "avg_epu16", "avg_epu16_zero",
    "mulhrs_epi16", "srl_epi16", "min_epu16", "add_epi16", "permutexvar_epi64", "permutexvar_epi64_fixed",
    "cvtepi16_epi8", "max_epi32", "reduce_max_epi32", "madd_epi16", "cvtepu32_epi64_lo", "extracti64x4_epi64_hi",
    "reduce_add_epi64", "mask_storeu_epi8_256", "set1_epi16_epi32_setzero", "srl_epi32_count64", "srli_epi16_15_16",
    "slli_epi16_15_16", "cvtsi32_si128",
};

/// Result bytes of op `k` on inputs a, b (64 bytes each), counts/masks from r.
MVNL_AVX512 static size_t apply(int k, const uint8_t *ab, const uint8_t *bb, uint64_t r, uint8_t *res) {
    const __m512i a = _mm512_loadu_si512((const void *)ab), b = _mm512_loadu_si512((const void *)bb);
    __m512i v = _mm512_setzero_si512();
    switch (k) {
    case 0: v = _mm512_sub_epi32(a, b); break;
    case 1: v = _mm512_add_epi32(a, b); break;
    case 2: v = _mm512_mask_loadu_epi32(a, (__mmask16)r, (const int32_t *)bb); break;
    case 3: v = _mm512_min_epu32(a, b); break;
    case 4: v = _mm512_srl_epi32(a, _mm_cvtsi32_si128((int)(r % 40))); break;
    case 5: v = _mm512_mullo_epi32(a, b); break;
    case 6: v = _mm512_packus_epi32(a, b); break;
    case 7: v = _mm512_slli_epi16(a, 5); break;
    case 8: v = _mm512_sub_epi16(a, b); break;
    case 9: v = _mm512_mulhi_epu16(a, b); break;
    case 10: v = _mm512_srlv_epi16(a, b); break;
    case 11: v = _mm512_srli_epi16(a, 11); break;
    case 12: v = _mm512_avg_epu16(a, b); break;
    case 13: v = _mm512_avg_epu16(a, _mm512_setzero_si512()); break;
    case 14: v = _mm512_mulhrs_epi16(a, b); break;
    case 15: v = _mm512_srl_epi16(a, _mm_cvtsi32_si128((int)(r % 20))); break;
    case 16: v = _mm512_min_epu16(a, b); break;
    case 17: v = _mm512_add_epi16(a, b); break;
    case 18: v = _mm512_permutexvar_epi64(b, a); break;
    case 19: v = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), a); break;
    case 20: _mm256_storeu_si256((__m256i *)res, _mm512_cvtepi16_epi8(a)); return 32;
    case 21: v = _mm512_max_epi32(a, b); break;
    case 22: { const int32_t x = _mm512_reduce_max_epi32(a); memcpy(res, &x, 4); return 4; }
    case 23: v = _mm512_madd_epi16(a, b); break;
    case 24: v = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(a)); break;
    case 25: _mm256_storeu_si256((__m256i *)res, _mm512_extracti64x4_epi64(a, 1)); return 32;
    case 26: { const int64_t x = _mm512_reduce_add_epi64(a); memcpy(res, &x, 8); return 8; }
    case 27:
        memcpy(res, bb, 32);
        _mm256_mask_storeu_epi8(res, (__mmask32)r, _mm512_castsi512_si256(a));
        return 32;
    case 28: {
        int16_t x;
        int32_t y;
        memcpy(&x, ab, 2);
        memcpy(&y, ab + 2, 4);
        _mm512_storeu_si512((void *)res, _mm512_add_epi32(_mm512_set1_epi16(x), _mm512_set1_epi32(y)));
        return 64;
    }
    case 29: {
        uint64_t count;
        memcpy(&count, bb, 8);
        v = _mm512_srl_epi32(a, _mm_cvtsi32_si128((int)count));  // large and negative 32-bit counts
        break;
    }
    case 30: v = _mm512_xor_si512(_mm512_srli_epi16(a, 15), _mm512_slli_epi16(_mm512_srli_epi16(a, 16), 1)); break;
    case 31: v = _mm512_xor_si512(_mm512_slli_epi16(a, 15), _mm512_srli_epi16(_mm512_slli_epi16(a, 16), 1)); break;
    case 32: {
        int32_t x;
        memcpy(&x, ab, 4);
        _mm_storeu_si128((__m128i *)res, _mm_cvtsi32_si128(x));
        return 16;
    }
    }
    _mm512_storeu_si512((void *)res, v);
    return 64;
}

static int intrinsics(int iterations) {
#if !defined(MV_SIMDE_EMULATION)
    if (!cpu_has_avx512()) { fprintf(stderr, "this CPU lacks AVX-512 F/BW/VL\n"); return 77; }
#endif
    for (int k = 0; k < NOPS; k++) {
        uint64_t h = 0xCBF29CE484222325ull;
        rng_state = 0x5EED + (uint64_t)k;
        for (int it = 0; it < iterations; it++) {
            uint8_t a[64], b[64], res[64];
            edge_fill(a);
            edge_fill(b);
            const uint64_t r = rnd();
            h = fnv(h, res, apply(k, a, b, r, res));
        }
        printf("%s %016llx\n", op_names[k], (unsigned long long)h);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "cpu")) return cpu_has_avx512() ? 0 : 1;
    if (argc >= 3 && !strcmp(argv[1], "intrinsics")) return intrinsics(atoi(argv[2]));
    if (argc >= 5 && !strcmp(argv[1], "run")) return run(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: harness run avx512|avx2|scalar CASES OUT | cpu | intrinsics N\n");
    return 2;
}
"""#
}
