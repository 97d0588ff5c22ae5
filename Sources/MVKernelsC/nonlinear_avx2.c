// AVX2 rows of the integer non-linear kernels, bit-exact with the Swift references (see
// mv_nonlinear.h). x86-64; elsewhere each function is a stub that traps.
#include "mv_nonlinear_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define MVNL_AVX2 __attribute__((target("avx2")))

// ---------------------------------------------------------------------------------------------
// Helpers

/// Eight int32 (already within -128..127) to eight int8 stored at `dst`.
MVNL_AVX2 static inline void mvnl_store8(int8_t *dst, __m256i v) {
    __m256i w = _mm256_packs_epi32(v, v);   // lane0: v0..3 v0..3, lane1: v4..7 v4..7 (int16)
    w = _mm256_packs_epi16(w, w);           // lane0 bytes 0..3 = v0..3, lane1 bytes 0..3 = v4..7
    uint32_t lo = (uint32_t)_mm_cvtsi128_si32(_mm256_castsi256_si128(w));
    uint32_t hi = (uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(w, 1));
    uint64_t both = (uint64_t)lo | ((uint64_t)hi << 32);
    __builtin_memcpy(dst, &both, 8);
}

/// Eight int8 at `src` sign-extended to int32.
MVNL_AVX2 static inline __m256i mvnl_load8(const int8_t *src) {
    int64_t v;
    __builtin_memcpy(&v, src, 8);
    return _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(v));
}

/// clamp(z + zp, lo, hi) without overflow.
MVNL_AVX2 static inline __m256i mvnl_zp_clamp_avx2(__m256i z, __m256i zp, __m256i lo_minus_zp, __m256i hi_minus_zp) {
    z = _mm256_min_epi32(_mm256_max_epi32(z, lo_minus_zp), hi_minus_zp);
    return _mm256_add_epi32(z, zp);
}

// ---------------------------------------------------------------------------------------------
// Softmax

/// Softmax constants of one row (IntegerSoftmax: steps 1-2 for 8 scores in 32-bit lanes, then
/// 16 in 16-bit lanes).
typedef struct {
    __m256i vm, vlimit, vmult, c0, c1, c2, c3, ones;
    __m128i pre, left;
    int use_left;
} mvnl_softmax_avx2;

/// d' (steps 1-2) of 8 scores in 32-bit lanes, before the saturating pack: min(d, 2^(16-a)) << a
/// (at most 2^16) where the pre-shift is 0, otherwise d >> r (r >= 1, so below 2^31); the signed
/// pack to 16 bits saturates either to 65535.
MVNL_AVX2 static inline __m256i mvnl_softmax_d8(const int32_t *s, const mvnl_softmax_avx2 *c) {
    const __m256i d = _mm256_sub_epi32(c->vm, _mm256_loadu_si256((const __m256i *)s));
    return c->use_left ? _mm256_sll_epi32(_mm256_min_epu32(d, c->vlimit), c->left) : _mm256_srl_epi32(d, c->pre);
}

/// e (Q15) of 16 scores, in the order packus_epi32 leaves them: 0-3, 8-11 | 4-7, 12-15.
MVNL_AVX2 static inline __m256i mvnl_softmax_exp16(const int32_t *s, const mvnl_softmax_avx2 *c) {
    const __m256i d = _mm256_packus_epi32(mvnl_softmax_d8(s, c), mvnl_softmax_d8(s + 8, c));
    const __m256i u = _mm256_mulhi_epu16(_mm256_adds_epu16(d, c->ones), c->vmult);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i k = _mm256_srli_epi16(u, 11);
    const __m256i y = _mm256_slli_epi16(u, 5);  // (u & 2047) << 5
    __m256i a = _mm256_sub_epi16(c->c2, _mm256_mulhi_epu16(c->c3, y));
    a = _mm256_sub_epi16(c->c1, _mm256_mulhi_epu16(a, y));
    const __m256i pw = _mm256_sub_epi16(c->c0, _mm256_mulhi_epu16(a, y));
    // P >> k in 32-bit lanes (AVX2 has no per-lane 16-bit shift); unpack and pack keep the order.
    const __m256i lo = _mm256_srlv_epi32(_mm256_unpacklo_epi16(pw, zero), _mm256_unpacklo_epi16(k, zero));
    const __m256i hi = _mm256_srlv_epi32(_mm256_unpackhi_epi16(pw, zero), _mm256_unpackhi_epi16(k, zero));
    return _mm256_avg_epu16(_mm256_packus_epi32(lo, hi), zero);  // ((P >> k) + 1) >> 1
}

/// Output codes (int16, in the order of e) of 16 e values.
MVNL_AVX2 static inline __m256i mvnl_softmax_out16(__m256i e, __m256i vr, __m128i t1, __m256i vhi, __m256i vzp) {
    const __m256i t = _mm256_mulhrs_epi16(e, vr);  // (e·R + 2^14) >> 15
    const __m256i q = _mm256_avg_epu16(_mm256_srl_epi16(t, t1), _mm256_setzero_si256());
    return _mm256_add_epi16(_mm256_min_epu16(q, vhi), vzp);
}

/// Step 1 of a row: its maximum.
MVNL_AVX2 static inline int32_t mvnl_softmax_max_avx2(const int32_t *s, int32_t n) {
    int32_t i = 0;
    __m256i vmax = _mm256_set1_epi32(INT32_MIN);
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_epi32(vmax, _mm256_loadu_si256((const __m256i *)(s + i)));
    __m128i m4 = _mm_max_epi32(_mm256_castsi256_si128(vmax), _mm256_extracti128_si256(vmax, 1));
    m4 = _mm_max_epi32(m4, _mm_shuffle_epi32(m4, _MM_SHUFFLE(1, 0, 3, 2)));
    m4 = _mm_max_epi32(m4, _mm_shuffle_epi32(m4, _MM_SHUFFLE(2, 3, 0, 1)));
    int32_t m = _mm_cvtsi128_si32(m4);
    for (; i < n; i++) m = s[i] > m ? s[i] : m;
    return m;
}

/// Step 2 of a row: e in Q15 (stored in the vector order of each 16-block) into `e`, and its sum:
/// pairs of e (each <= 32766) add into 32-bit lanes by one madd.
MVNL_AVX2 static inline uint64_t mvnl_softmax_exp_row_avx2(const int32_t *s, int32_t n, int32_t m,
                                                           const mv_softmax_params *p, uint16_t *e) {
    int32_t i;
    mvnl_softmax_avx2 c;
    c.vm = _mm256_set1_epi32(m);
    c.vlimit = _mm256_set1_epi32(1 << (16 - p->exp_left_shift));
    c.pre = _mm_cvtsi32_si128(p->exp_pre_shift);
    c.left = _mm_cvtsi32_si128(p->exp_left_shift);
    c.use_left = p->exp_pre_shift == 0;
    c.vmult = _mm256_set1_epi16((short)p->exp_multiplier);
    c.c0 = _mm256_set1_epi16((short)65531);
    c.c1 = _mm256_set1_epi16((short)45300);
    c.c2 = _mm256_set1_epi16(15112);
    c.c3 = _mm256_set1_epi16(2579);
    c.ones = _mm256_set1_epi16(1);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (i = 0; i + 32 <= n; i += 32) {
        const __m256i e0 = mvnl_softmax_exp16(s + i, &c), e1 = mvnl_softmax_exp16(s + i + 16, &c);
        _mm256_storeu_si256((__m256i *)(e + i), e0);
        _mm256_storeu_si256((__m256i *)(e + i + 16), e1);
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(e0, c.ones));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(e1, c.ones));
    }
    if (i + 16 <= n) {
        const __m256i e0 = mvnl_softmax_exp16(s + i, &c);
        _mm256_storeu_si256((__m256i *)(e + i), e0);
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(e0, c.ones));
        i += 16;
    }
    const int32_t vector_end = i;
    // Lane sums are < 2^31 for n <= 2^19: add them as unsigned 64-bit.
    const __m256i acc = _mm256_add_epi32(acc0, acc1);
    const __m256i wide = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(acc)),
                                          _mm256_cvtepu32_epi64(_mm256_extracti128_si256(acc, 1)));
    __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(wide), _mm256_extracti128_si256(wide, 1));
    uint64_t sum = (uint64_t)_mm_cvtsi128_si64(s2) + (uint64_t)_mm_extract_epi64(s2, 1);
    return sum + mvnl_softmax_tail_exp(s, m, vector_end, n, e, p);
}

/// Step 3 of a row: one reciprocal, then q = (((e·R + 2^14) >> 15 >> t1) + 1) >> 1, + zp.
MVNL_AVX2 static inline void mvnl_softmax_out_row_avx2(const uint16_t *e, int8_t *out, int32_t n, uint64_t sum,
                                                       const mv_softmax_params *p) {
    int32_t i;
    uint32_t r;
    int t1;
    mvnl_softmax_reciprocal(sum, p, &r, &t1);
    const __m256i vr = _mm256_set1_epi16((short)r);
    const __m128i vt1 = _mm_cvtsi32_si128(t1);
    const __m256i vhi = _mm256_set1_epi16((short)(127 - p->output_zero_point));
    const __m256i vzp = _mm256_set1_epi16((short)p->output_zero_point);
    for (i = 0; i + 32 <= n; i += 32) {
        const __m256i q0 = mvnl_softmax_out16(_mm256_loadu_si256((const __m256i *)(e + i)), vr, vt1, vhi, vzp);
        const __m256i q1 = mvnl_softmax_out16(_mm256_loadu_si256((const __m256i *)(e + i + 16)), vr, vt1, vhi, vzp);
        // Dwords of the pack: 0-3, 8-11, 16-19, 24-27 | 4-7, 12-15, 20-23, 28-31.
        const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q0, q1), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(out + i), b);
    }
    if (i + 16 <= n) {
        const __m256i q = mvnl_softmax_out16(_mm256_loadu_si256((const __m256i *)(e + i)), vr, vt1, vhi, vzp);
        const __m256i ordered = _mm256_permute4x64_epi64(q, _MM_SHUFFLE(3, 1, 2, 0));
        _mm_storeu_si128((__m128i *)(out + i),
                         _mm_packs_epi16(_mm256_castsi256_si128(ordered), _mm256_extracti128_si256(ordered, 1)));
        i += 16;
    }
    for (; i < n; i++) out[i] = mvnl_softmax_output(e[i], r, t1, p->output_zero_point);
}

/// Two rows at a time, step by step, as the AVX-512 rows: one row's reductions and scalar
/// reciprocal overlap the other's work. The scratch holds both rows' e (`IntegerSoftmax.scratchCount`).
MVNL_AVX2 void mv_softmax_rows_avx2(const int32_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                                    int32_t n, int32_t rows, const mv_softmax_params *p, int32_t *scratch) {
    uint16_t *e0 = (uint16_t *)scratch, *e1 = e0 + ((n + 31) & ~31);
    int32_t r = 0;
    for (; r + 2 <= rows; r += 2) {
        const int32_t *s0 = in + r * in_stride, *s1 = s0 + in_stride;
        const int32_t m0 = mvnl_softmax_max_avx2(s0, n), m1 = mvnl_softmax_max_avx2(s1, n);
        const uint64_t sum0 = mvnl_softmax_exp_row_avx2(s0, n, m0, p, e0);
        const uint64_t sum1 = mvnl_softmax_exp_row_avx2(s1, n, m1, p, e1);
        mvnl_softmax_out_row_avx2(e0, out + r * out_stride, n, sum0, p);
        mvnl_softmax_out_row_avx2(e1, out + (r + 1) * out_stride, n, sum1, p);
    }
    if (r < rows) {
        const int32_t *s0 = in + r * in_stride;
        mvnl_softmax_out_row_avx2(e0, out + r * out_stride, n, mvnl_softmax_exp_row_avx2(s0, n, mvnl_softmax_max_avx2(s0, n), p, e0), p);
    }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

/// Steps 1-4 of one token: Σa, Σa², and the factors K and L.
typedef struct {
    int32_t k, l;
} mvnl_layernorm_token;

MVNL_AVX2 static inline mvnl_layernorm_token mvnl_layernorm_stats_avx2(const int8_t *x, const mv_layernorm_params *p) {
    const int32_t c = p->channels;
    int32_t i = 0;
    // 1. Σa and Σa² (int32 lanes; pairs of int16 products via vpmaddwd).
    __m256i vs = _mm256_setzero_si256(), vq = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    for (; i + 16 <= c; i += 16) {
        __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + i)));
        vs = _mm256_add_epi32(vs, _mm256_madd_epi16(a, ones));
        vq = _mm256_add_epi32(vq, _mm256_madd_epi16(a, a));
    }
    __m256i hs = _mm256_hadd_epi32(vs, vq);  // lane: s01 s23 q01 q23 | s45 s67 q45 q67
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(hs), _mm256_extracti128_si256(hs, 1));
    h = _mm_hadd_epi32(h, h);                // s q s q
    int32_t sum = _mm_cvtsi128_si32(h), sq = _mm_extract_epi32(h, 1);
    for (; i < c; i++) {
        int32_t a = x[i];
        sum += a;
        sq += a * a;
    }

    // 2-4. Per-token factors.
    mvnl_layernorm_token k;
    mvnl_layernorm_factor(sum, sq, p, &k.k, &k.l);
    return k;
}

/// Step 5 of one token, eight channels per step in 32-bit lanes: n = (a·K − L) >> 16, n·G by
/// vpmaddwd (|n| < 2^15 sign-extended in the low word, G's high word cleared), + B, >> h per lane.
MVNL_AVX2 static inline void mvnl_layernorm_output_avx2(const int8_t *x, int8_t *out, const mv_layernorm_params *p,
                                                        mvnl_layernorm_token k) {
    const int32_t c = p->channels;
    int32_t i;
    const __m256i vk = _mm256_set1_epi32(k.k), vl = _mm256_set1_epi32(k.l);
    const __m256i low16 = _mm256_set1_epi32(0xFFFF);
    const __m256i zp = _mm256_set1_epi32(p->output_zero_point);
    const __m256i lo = _mm256_set1_epi32(-128 - p->output_zero_point);
    const __m256i hi = _mm256_set1_epi32(127 - p->output_zero_point);
    for (i = 0; i + 8 <= c; i += 8) {
        const __m256i n = _mm256_srai_epi32(_mm256_sub_epi32(_mm256_mullo_epi32(mvnl_load8(x + i), vk), vl), 16);
        const __m256i g = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(p->gamma_multipliers + i)), low16);
        const __m256i b = _mm256_loadu_si256((const __m256i *)(p->biases + i));
        const __m256i h = _mm256_loadu_si256((const __m256i *)(p->shifts + i));
        const __m256i y = _mm256_srav_epi32(_mm256_add_epi32(_mm256_madd_epi16(n, g), b), h);
        mvnl_store8(out + i, mvnl_zp_clamp_avx2(y, zp, lo, hi));
    }
    for (; i < c; i++)
        out[i] = mvnl_layernorm_output(x[i], k.k, k.l, p->gamma_multipliers[i], p->shifts[i], p->biases[i],
                                       p->output_zero_point);
}

MVNL_AVX2 void mv_layernorm_rows_avx2(const int8_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                                      int32_t tokens, const mv_layernorm_params *p) {
    int32_t t = 0;
    // Two tokens' statistics before their outputs: the factors' scalar reciprocal square root
    // chains of the two tokens are independent and overlap.
    for (; t + 2 <= tokens; t += 2) {
        const mvnl_layernorm_token k0 = mvnl_layernorm_stats_avx2(in + t * in_stride, p);
        const mvnl_layernorm_token k1 = mvnl_layernorm_stats_avx2(in + (t + 1) * in_stride, p);
        mvnl_layernorm_output_avx2(in + t * in_stride, out + t * out_stride, p, k0);
        mvnl_layernorm_output_avx2(in + (t + 1) * in_stride, out + (t + 1) * out_stride, p, k1);
    }
    if (t < tokens) {
        const mvnl_layernorm_token k = mvnl_layernorm_stats_avx2(in + t * in_stride, p);
        mvnl_layernorm_output_avx2(in + t * in_stride, out + t * out_stride, p, k);
    }
}

// ---------------------------------------------------------------------------------------------
// Add

/// 16 outputs of the add from 16 int8 of each operand: the operands sign-extended to 16 bits and
/// interleaved as (a, b) word pairs, one pairwise multiply-add by (ma, mb) per eight outputs, the
/// bias (zero points, rounding, z_y·2^shift) and the shift in 32 bits, then packed with saturation
/// (the clamp range lies within int8, so saturating first changes nothing). In order: unpack and
/// pack both work within 128-bit lanes.
MVNL_AVX2 static inline __m256i mvnl_add16(__m128i a8, __m128i b8, __m256i mab, __m256i bias, __m128i shift) {
    const __m256i a = _mm256_cvtepi8_epi16(a8), b = _mm256_cvtepi8_epi16(b8);
    const __m256i lo = _mm256_sra_epi32(_mm256_add_epi32(_mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), mab), bias), shift);
    const __m256i hi = _mm256_sra_epi32(_mm256_add_epi32(_mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), mab), bias), shift);
    return _mm256_packs_epi32(lo, hi);  // int16, elements 0…15 in order
}

MVNL_AVX2 void mv_add_rows_avx2(const int8_t *a, ptrdiff_t a_stride, const int8_t *b, ptrdiff_t b_stride,
                                int8_t *out, ptrdiff_t out_stride, int32_t columns, int32_t rows,
                                const mv_add_params *p) {
    const __m256i mab = _mm256_set1_epi32(mvnl_add_multiplier_pair(p));
    const __m256i bias = _mm256_set1_epi32(mvnl_add_bias(p));
    const __m128i shift = _mm_cvtsi32_si128(p->shift);
    const __m256i lo = _mm256_set1_epi8((int8_t)p->clamp_min), hi = _mm256_set1_epi8((int8_t)p->clamp_max);
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *pa = a + r * a_stride, *pb = b + r * b_stride;
        int8_t *po = out + r * out_stride;
        int32_t i = 0;
        for (; i + 32 <= columns; i += 32) {
            const __m256i w0 = mvnl_add16(_mm_loadu_si128((const __m128i *)(pa + i)),
                                          _mm_loadu_si128((const __m128i *)(pb + i)), mab, bias, shift);
            const __m256i w1 = mvnl_add16(_mm_loadu_si128((const __m128i *)(pa + i + 16)),
                                          _mm_loadu_si128((const __m128i *)(pb + i + 16)), mab, bias, shift);
            __m256i q = _mm256_permute4x64_epi64(_mm256_packs_epi16(w0, w1), _MM_SHUFFLE(3, 1, 2, 0));
            q = _mm256_min_epi8(_mm256_max_epi8(q, lo), hi);
            _mm256_storeu_si256((__m256i *)(po + i), q);
        }
        for (; i + 16 <= columns; i += 16) {
            const __m256i w = mvnl_add16(_mm_loadu_si128((const __m128i *)(pa + i)),
                                         _mm_loadu_si128((const __m128i *)(pb + i)), mab, bias, shift);
            __m128i q = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
            q = _mm_min_epi8(_mm_max_epi8(q, _mm256_castsi256_si128(lo)), _mm256_castsi256_si128(hi));
            _mm_storeu_si128((__m128i *)(po + i), q);
        }
        for (; i < columns; i++) po[i] = mvnl_add(pa[i], pb[i], p);
    }
}

#else
MVNL_TRAPPING_STUBS(avx2)  // the rule of mv_nonlinear.h: off x86-64, every entry traps
#endif
