// AVX-512 (F, BW) rows of the integer softmax, LayerNorm and add, bit-exact with the Swift references
// (IntegerSoftmax.swift, IntegerLayerNorm.swift, AddInt8.swift) and the AVX2 rows: twice the lanes, the per-lane 16-bit
// shift (vpsrlvw) AVX2 lacks, and masked loads and stores for row tails instead of scalar loops.
// x86-64; elsewhere each function is a stub that traps (the rule of mv_nonlinear.h).
#include "mv_nonlinear_internal.h"

#if defined(__x86_64__)
#if defined(MV_SIMDE_EMULATION)
// Test-only (never defined by the package build): NonlinearCrossISAHarnessTests compiles this file
// with SIMDe emulating the intrinsics, so that hosts without AVX-512 still check it. Shims for what
// SIMDe 0.7 lacks, with Intel's semantics (masked-off lanes are neither read nor written, so they
// cannot fault).
#include <string.h>
#define SIMDE_ENABLE_NATIVE_ALIASES
#if defined(__clang__)
// Newer clang headers define __m128bh even without AVX512-BF16, which SIMDe 0.7 then aliases with
// a different type unless it sees the header first (it then reuses clang's types).
#include <immintrin.h>
#endif
#include <simde/x86/avx512.h>
#define MVNL_AVX512
#define __mmask16 simde__mmask16
#define __mmask32 simde__mmask32
static inline simde__m512i mvnl_emu_mask_loadu_epi32(simde__m512i src, simde__mmask16 k, const void *p) {
    int32_t x[16];
    simde_mm512_storeu_si512(x, src);
    for (int i = 0; i < 16; i++)
        if ((k >> i) & 1) memcpy(&x[i], (const char *)p + 4 * i, 4);
    return simde_mm512_loadu_si512(x);
}
#undef _mm512_mask_loadu_epi32
#define _mm512_mask_loadu_epi32 mvnl_emu_mask_loadu_epi32
static inline void mvnl_emu_mask_storeu_epi8_256(void *p, simde__mmask32 k, simde__m256i a) {
    uint8_t x[32];
    simde_mm256_storeu_si256(x, a);
    for (int i = 0; i < 32; i++)
        if ((k >> i) & 1) ((uint8_t *)p)[i] = x[i];
}
#undef _mm256_mask_storeu_epi8
#define _mm256_mask_storeu_epi8 mvnl_emu_mask_storeu_epi8_256
static inline simde__m512i mvnl_emu_mulhi_epu16(simde__m512i a, simde__m512i b) {
    uint16_t x[32], y[32];
    simde_mm512_storeu_si512(x, a);
    simde_mm512_storeu_si512(y, b);
    for (int i = 0; i < 32; i++) x[i] = (uint16_t)(((uint32_t)x[i] * y[i]) >> 16);
    return simde_mm512_loadu_si512(x);
}
#undef _mm512_mulhi_epu16
#define _mm512_mulhi_epu16 mvnl_emu_mulhi_epu16
static inline int32_t mvnl_emu_reduce_max_epi32(simde__m512i a) {
    int32_t x[16];
    simde_mm512_storeu_si512(x, a);
    int32_t m = x[0];
    for (int i = 1; i < 16; i++) m = x[i] > m ? x[i] : m;
    return m;
}
#undef _mm512_reduce_max_epi32
#define _mm512_reduce_max_epi32 mvnl_emu_reduce_max_epi32
static inline int64_t mvnl_emu_reduce_add_epi64(simde__m512i a) {
    uint64_t x[8], s = 0;
    simde_mm512_storeu_si512(x, a);
    for (int i = 0; i < 8; i++) s += x[i];  // wraps, as vpaddq does
    return (int64_t)s;
}
#undef _mm512_reduce_add_epi64
#define _mm512_reduce_add_epi64 mvnl_emu_reduce_add_epi64
static inline simde__m512i mvnl_emu_cvtepu32_epi64(simde__m256i a) {
    uint32_t x[8];
    uint64_t y[8];
    simde_mm256_storeu_si256(x, a);
    for (int i = 0; i < 8; i++) y[i] = x[i];
    return simde_mm512_loadu_si512(y);
}
#undef _mm512_cvtepu32_epi64
#define _mm512_cvtepu32_epi64 mvnl_emu_cvtepu32_epi64
// SIMDe 0.7.4 defines the _mm512_madd_epi16 alias with four parameters (the masked form's).
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16((a), (b))
#else
#include <immintrin.h>
#define MVNL_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512vl")))
#endif

typedef struct {
    __m512i vm, vfill, vlimit, vmult, c0, c1, c2, c3, ones;
    __m128i pre, left;
} mvnl_softmax_avx512;

/// Steps 1-2 of 16 scores in 32-bit lanes, before the saturating pack: `left` (a row constant)
/// takes min(d, 2^(16-a)) << a (at most 2^16), otherwise d >> r (r >= 1, so below 2^31); the
/// signed pack to 16 bits then saturates either to 65535. Lanes outside `mask` read as 2^31
/// below the maximum, so their d' saturates and their e is 0 (the sum is unchanged).
MVNL_AVX512 static inline __m512i mvnl_softmax_d16(const int32_t *s, __mmask16 mask, int full, int left,
                                                   const mvnl_softmax_avx512 *c) {
    const __m512i x = full ? _mm512_loadu_si512((const void *)s) : _mm512_mask_loadu_epi32(c->vfill, mask, s);
    const __m512i d = _mm512_sub_epi32(c->vm, x);
    return left ? _mm512_sll_epi32(_mm512_min_epu32(d, c->vlimit), c->left) : _mm512_srl_epi32(d, c->pre);
}

/// e (Q15) of 32 scores, in packus order: per 128-bit lane L, scores 4L..4L+3 then 16+4L..16+4L+3.
MVNL_AVX512 static inline __m512i mvnl_softmax_exp32(const int32_t *s, __mmask32 mask, int full, int left,
                                                     const mvnl_softmax_avx512 *c) {
    const __m512i d = _mm512_packus_epi32(mvnl_softmax_d16(s, (__mmask16)mask, full, left, c),
                                          mvnl_softmax_d16(s + 16, (__mmask16)(mask >> 16), full, left, c));
    const __m512i u = _mm512_mulhi_epu16(_mm512_adds_epu16(d, c->ones), c->vmult);  // step 3
    const __m512i y = _mm512_slli_epi16(u, 5);  // (u & 2047) << 5
    __m512i a = _mm512_sub_epi16(c->c2, _mm512_mulhi_epu16(c->c3, y));
    a = _mm512_sub_epi16(c->c1, _mm512_mulhi_epu16(a, y));
    const __m512i pw = _mm512_sub_epi16(c->c0, _mm512_mulhi_epu16(a, y));
    // ((P >> k) + 1) >> 1; vpsrlvw gives 0 for counts >= 16.
    return _mm512_avg_epu16(_mm512_srlv_epi16(pw, _mm512_srli_epi16(u, 11)), _mm512_setzero_si512());
}

/// q (before the clamp, at most 2^14) of 32 e values, in their order: ((e·R + 2^14) >> 15 >> t1
/// + 1) >> 1.
MVNL_AVX512 static inline __m512i mvnl_softmax_q32(__m512i e, __m512i vr, __m128i t1) {
    return _mm512_avg_epu16(_mm512_srl_epi16(_mm512_mulhrs_epi16(e, vr), t1), _mm512_setzero_si512());
}

/// The 32 output codes of 32 e values (packus order) as int8 in score order.
MVNL_AVX512 static inline __m256i mvnl_softmax_out32(__m512i e, __m512i vr, __m128i t1, __m512i vhi, __m512i vzp) {
    const __m512i z = _mm512_add_epi16(_mm512_min_epu16(mvnl_softmax_q32(e, vr, t1), vhi), vzp);
    // Quadwords hold scores 0-3, 16-19, 4-7, 20-23, 8-11, 24-27, 12-15, 28-31.
    const __m512i ordered = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), z);
    return _mm512_cvtepi16_epi8(ordered);  // codes are within int8
}

MVNL_AVX512 static inline __mmask32 mvnl_tail_mask(int32_t left) {
    return left >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << left) - 1);
}

/// Step 1 of a row: its maximum (the masked tail reads INT32_MIN).
MVNL_AVX512 static inline int32_t mvnl_softmax_max512(const int32_t *s, int32_t n) {
    __m512i vmax = _mm512_set1_epi32(INT32_MIN);
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) vmax = _mm512_max_epi32(vmax, _mm512_loadu_si512((const void *)(s + i)));
    if (i < n) vmax = _mm512_max_epi32(vmax, _mm512_mask_loadu_epi32(vmax, (__mmask16)((1u << (n - i)) - 1), s + i));
    return _mm512_reduce_max_epi32(vmax);
}

/// Steps 2-5 of a row: e in Q15 (packus order within each 32-block) into `e`, and its sum.
/// `left` is a constant at each call, so each shift direction has its own loop.
MVNL_AVX512 static inline uint64_t mvnl_softmax_exp_row512(const int32_t *s, int32_t n, int32_t m, int left,
                                                           const mv_softmax_params *p, uint16_t *e) {
    mvnl_softmax_avx512 c;
    c.vm = _mm512_set1_epi32(m);
    c.vfill = _mm512_set1_epi32((int32_t)((uint32_t)m - 0x80000000u));
    c.vlimit = _mm512_set1_epi32(1 << (16 - p->exp_left_shift));
    c.pre = _mm_cvtsi32_si128(p->exp_pre_shift);
    c.left = _mm_cvtsi32_si128(p->exp_left_shift);
    c.vmult = _mm512_set1_epi16((short)p->exp_multiplier);
    c.c0 = _mm512_set1_epi16((short)65531);
    c.c1 = _mm512_set1_epi16((short)45300);
    c.c2 = _mm512_set1_epi16(15112);
    c.c3 = _mm512_set1_epi16(2579);
    c.ones = _mm512_set1_epi16(1);
    __m512i acc = _mm512_setzero_si512();
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512i v = mvnl_softmax_exp32(s + i, 0xFFFFFFFFu, 1, left, &c);
        _mm512_storeu_si512((void *)(e + i), v);
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(v, c.ones));
    }
    if (i < n) {
        const __m512i v = mvnl_softmax_exp32(s + i, mvnl_tail_mask(n - i), 0, left, &c);
        _mm512_storeu_si512((void *)(e + i), v);  // scratch has room for a whole last block
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(v, c.ones));
    }
    // Lane sums are < 2^31 for n <= 2^19: add them as unsigned 64-bit.
    const __m512i wide = _mm512_add_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(acc)),
                                          _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(acc, 1)));
    return (uint64_t)_mm512_reduce_add_epi64(wide);
}

/// Step 6 of a row: one reciprocal, then the codes. With the zero point -128 (the compiler's),
/// whole 64-blocks take a shorter path: the unsigned saturating pack to bytes is the clamp at
/// 127 - zp = 255, a dword permute restores the order, and an XOR adds -128.
MVNL_AVX512 static inline void mvnl_softmax_out_row512(const uint16_t *e, int8_t *out, int32_t n, uint64_t sum,
                                                       const mv_softmax_params *p) {
    uint32_t r;
    int t1;
    mvnl_softmax_reciprocal(sum, p, &r, &t1);
    const __m512i vr = _mm512_set1_epi16((short)r);
    const __m128i vt1 = _mm_cvtsi32_si128(t1);
    const __m512i vhi = _mm512_set1_epi16((short)(127 - p->output_zero_point));
    const __m512i vzp = _mm512_set1_epi16((short)p->output_zero_point);
    int32_t i = 0;
    if (p->output_zero_point == -128) {
        // Dword j of the pack holds scores 4·(4·(j % 4) + j / 4)...+3 of the 64-block.
        const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        for (; i + 64 <= n; i += 64) {
            const __m512i q0 = mvnl_softmax_q32(_mm512_loadu_si512((const void *)(e + i)), vr, vt1);
            const __m512i q1 = mvnl_softmax_q32(_mm512_loadu_si512((const void *)(e + i + 32)), vr, vt1);
            const __m512i b = _mm512_permutexvar_epi32(order, _mm512_packus_epi16(q0, q1));
            _mm512_storeu_si512((void *)(out + i), _mm512_xor_si512(b, flip));
        }
    }
    for (; i + 32 <= n; i += 32)
        _mm256_storeu_si256((__m256i *)(out + i), mvnl_softmax_out32(_mm512_loadu_si512((const void *)(e + i)), vr, vt1, vhi, vzp));
    if (i < n) {
        const __m256i b = mvnl_softmax_out32(_mm512_loadu_si512((const void *)(e + i)), vr, vt1, vhi, vzp);
        _mm256_mask_storeu_epi8(out + i, mvnl_tail_mask(n - i), b);
    }
}

/// Up to four rows at a time, step by step: each step's reductions (maximum, sum) and the scalar
/// reciprocal are latency chains, which the other rows' independent work overlaps. The scratch
/// holds four rows' e (`IntegerSoftmax.scratchCount`).
MVNL_AVX512 void mv_softmax_rows_avx512(const int32_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                                        int32_t n, int32_t rows, const mv_softmax_params *p, int32_t *scratch) {
    const ptrdiff_t w = (n + 31) & ~31;
    uint16_t *e = (uint16_t *)scratch;
    const int left = p->exp_pre_shift == 0;
    for (int32_t r = 0; r < rows; r += 4) {
        const int g = rows - r < 4 ? rows - r : 4;
        int32_t m[4];
        uint64_t sum[4];
        for (int j = 0; j < g; j++) m[j] = mvnl_softmax_max512(in + (r + j) * in_stride, n);
        for (int j = 0; j < g; j++)
            sum[j] = left ? mvnl_softmax_exp_row512(in + (r + j) * in_stride, n, m[j], 1, p, e + j * w)
                          : mvnl_softmax_exp_row512(in + (r + j) * in_stride, n, m[j], 0, p, e + j * w);
        for (int j = 0; j < g; j++) mvnl_softmax_out_row512(e + j * w, out + (r + j) * out_stride, n, sum[j], p);
    }
}


#if !defined(MV_SIMDE_EMULATION)
// LayerNorm and add are left out of the SIMDe build of the softmax harness (SIMDe 0.7 lacks many
// of their intrinsics): the Swift tests check them natively on AVX-512 hosts only.
// ---------------------------------------------------------------------------------------------
// LayerNorm

typedef struct { int32_t k, l; } mvnl_layernorm_token512;

/// Steps 1-4 of one token: Σa and Σa² (pairs of int16 products by vpmaddwd, 32 channels per
/// step, the tail masked), then the factors K and L.
MVNL_AVX512 static inline mvnl_layernorm_token512 mvnl_layernorm_stats512(const int8_t *x, const mv_layernorm_params *p) {
    const int32_t c = p->channels;
    const __m512i ones = _mm512_set1_epi16(1);
    __m512i vs = _mm512_setzero_si512(), vq = _mm512_setzero_si512();
    for (int32_t i = 0; i < c; i += 32) {
        const __mmask32 mask = c - i >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << (c - i)) - 1);
        const __m512i a = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mask, x + i));
        vs = _mm512_add_epi32(vs, _mm512_madd_epi16(a, ones));
        vq = _mm512_add_epi32(vq, _mm512_madd_epi16(a, a));
    }
    mvnl_layernorm_token512 k;
    mvnl_layernorm_factor(_mm512_reduce_add_epi32(vs), _mm512_reduce_add_epi32(vq), p, &k.k, &k.l);
    return k;
}

/// Step 5 of one token, 16 channels per step (the tail masked), all in 32-bit lanes:
/// n = (a·K − L) >> 16; n·G by vpmaddwd (|n| < 2^15 sits sign-extended in the lane's low word,
/// G's high word is cleared, so the pair sum is n·G exactly); + B, >> h per lane.
MVNL_AVX512 static inline void mvnl_layernorm_output512(const int8_t *x, int8_t *out, const mv_layernorm_params *p,
                                                        mvnl_layernorm_token512 k) {
    const int32_t c = p->channels;
    const __m512i vk = _mm512_set1_epi32(k.k), vl = _mm512_set1_epi32(k.l);
    const __m512i low16 = _mm512_set1_epi32(0xFFFF);
    const __m512i zp = _mm512_set1_epi32(p->output_zero_point);
    const __m512i lo = _mm512_set1_epi32(-128 - p->output_zero_point);
    const __m512i hi = _mm512_set1_epi32(127 - p->output_zero_point);
    for (int32_t i = 0; i < c; i += 16) {
        const __mmask16 mask = c - i >= 16 ? 0xFFFF : (__mmask16)((1u << (c - i)) - 1);
        const __m512i a = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, x + i));
        const __m512i n = _mm512_srai_epi32(_mm512_sub_epi32(_mm512_mullo_epi32(a, vk), vl), 16);
        const __m512i g = _mm512_and_si512(_mm512_maskz_loadu_epi32(mask, p->gamma_multipliers + i), low16);
        const __m512i b = _mm512_maskz_loadu_epi32(mask, p->biases + i);
        const __m512i h = _mm512_maskz_loadu_epi32(mask, p->shifts + i);
        __m512i z = _mm512_srav_epi32(_mm512_add_epi32(_mm512_madd_epi16(n, g), b), h);
        z = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(z, lo), hi), zp);
        _mm_mask_storeu_epi8(out + i, mask, _mm512_cvtepi32_epi8(z));
    }
}

MVNL_AVX512 void mv_layernorm_rows_avx512(const int8_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                                          int32_t tokens, const mv_layernorm_params *p) {
    int32_t t = 0;
    // Two tokens' statistics before their outputs: their scalar reciprocal square root chains
    // overlap (as in the AVX2 rows).
    for (; t + 2 <= tokens; t += 2) {
        const mvnl_layernorm_token512 k0 = mvnl_layernorm_stats512(in + t * in_stride, p);
        const mvnl_layernorm_token512 k1 = mvnl_layernorm_stats512(in + (t + 1) * in_stride, p);
        mvnl_layernorm_output512(in + t * in_stride, out + t * out_stride, p, k0);
        mvnl_layernorm_output512(in + (t + 1) * in_stride, out + (t + 1) * out_stride, p, k1);
    }
    if (t < tokens) {
        const mvnl_layernorm_token512 k = mvnl_layernorm_stats512(in + t * in_stride, p);
        mvnl_layernorm_output512(in + t * in_stride, out + t * out_stride, p, k);
    }
}

// ---------------------------------------------------------------------------------------------
// Add

/// 32 outputs of the add as int16 (elements 0…31 in order): the AVX2 rows' mvnl_add16 in 512 bits.
MVNL_AVX512 static inline __m512i mvnl_add32(__m256i a8, __m256i b8, __m512i mab, __m512i bias, __m128i shift) {
    const __m512i a = _mm512_cvtepi8_epi16(a8), b = _mm512_cvtepi8_epi16(b8);
    const __m512i lo = _mm512_sra_epi32(_mm512_add_epi32(_mm512_madd_epi16(_mm512_unpacklo_epi16(a, b), mab), bias), shift);
    const __m512i hi = _mm512_sra_epi32(_mm512_add_epi32(_mm512_madd_epi16(_mm512_unpackhi_epi16(a, b), mab), bias), shift);
    return _mm512_packs_epi32(lo, hi);
}

MVNL_AVX512 void mv_add_rows_avx512(const int8_t *a, ptrdiff_t a_stride, const int8_t *b, ptrdiff_t b_stride,
                                    int8_t *out, ptrdiff_t out_stride, int32_t columns, int32_t rows,
                                    const mv_add_params *p) {
    const __m512i mab = _mm512_set1_epi32(mvnl_add_multiplier_pair(p));
    const __m512i bias = _mm512_set1_epi32(mvnl_add_bias(p));
    const __m128i shift = _mm_cvtsi32_si128(p->shift);
    const __m512i lo = _mm512_set1_epi8((int8_t)p->clamp_min), hi = _mm512_set1_epi8((int8_t)p->clamp_max);
    // packs_epi16 leaves the 64-bit halves of its operands interleaved by 128-bit lane.
    const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *pa = a + r * a_stride, *pb = b + r * b_stride;
        int8_t *po = out + r * out_stride;
        for (int32_t i = 0; i < columns; i += 64) {
            const int32_t n = columns - i;
            const __mmask64 mask = n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
            const __m512i va = _mm512_maskz_loadu_epi8(mask, pa + i), vb = _mm512_maskz_loadu_epi8(mask, pb + i);
            const __m512i w0 = mvnl_add32(_mm512_castsi512_si256(va), _mm512_castsi512_si256(vb), mab, bias, shift);
            const __m512i w1 = mvnl_add32(_mm512_extracti64x4_epi64(va, 1), _mm512_extracti64x4_epi64(vb, 1), mab, bias, shift);
            __m512i q = _mm512_permutexvar_epi64(order, _mm512_packs_epi16(w0, w1));
            q = _mm512_min_epi8(_mm512_max_epi8(q, lo), hi);
            _mm512_mask_storeu_epi8(po + i, mask, q);
        }
    }
}
#endif  // !MV_SIMDE_EMULATION

#else
void mv_layernorm_rows_avx512(const int8_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                              int32_t tokens, const mv_layernorm_params *p) {
    (void)in; (void)in_stride; (void)out; (void)out_stride; (void)tokens; (void)p;
    __builtin_trap();
}
void mv_add_rows_avx512(const int8_t *a, ptrdiff_t a_stride, const int8_t *b, ptrdiff_t b_stride,
                        int8_t *out, ptrdiff_t out_stride, int32_t columns, int32_t rows, const mv_add_params *p) {
    (void)a; (void)a_stride; (void)b; (void)b_stride; (void)out; (void)out_stride; (void)columns; (void)rows; (void)p;
    __builtin_trap();
}
void mv_softmax_rows_avx512(const int32_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                            int32_t n, int32_t rows, const mv_softmax_params *p, int32_t *scratch) {
    (void)in; (void)in_stride; (void)out; (void)out_stride; (void)n; (void)rows; (void)p; (void)scratch;
    __builtin_trap();
}
#endif
