// Scalar helpers shared by nonlinear_avx2.c and nonlinear_neon.c (row tails, per-row and
// per-token scalars). Each mirrors the Swift specification line for line.
#ifndef MV_NONLINEAR_INTERNAL_H
#define MV_NONLINEAR_INTERNAL_H
#include "include/mv_nonlinear.h"

/// 2^16 * 2^(-x/2048), x in 0..2047 (IntegerSoftmax.exp2Fraction).
static inline uint32_t mvnl_exp2_fraction(uint32_t x) {
    const uint32_t y = x << 5;
    uint32_t a = 15112u - ((2579u * y) >> 16);
    a = 45300u - ((a * y) >> 16);
    return 65531u - ((a * y) >> 16);
}

/// e in Q15 for a score difference (IntegerSoftmax.expQ15).
static inline uint32_t mvnl_exp_q15(uint32_t diff, const mv_softmax_params *p) {
    const uint64_t shifted = ((uint64_t)diff << p->exp_left_shift) >> p->exp_pre_shift;
    const uint32_t d = shifted < 65534 ? (uint32_t)shifted + 1 : 65535u;
    const uint32_t u = (d * p->exp_multiplier) >> 16;
    const uint32_t k = u >> 11;
    const uint32_t scaled = k >= 16 ? 0 : mvnl_exp2_fraction(u & 2047u) >> k;
    return (scaled + 1) >> 1;
}

/// Per-row output multiplier R in [2^14, 2^15) and shift t1 in 0..15 (IntegerSoftmax.reciprocal).
static inline void mvnl_softmax_reciprocal(uint64_t sum, const mv_softmax_params *p, uint32_t *r, int *t1) {
    const int b = 64 - __builtin_clzll(sum);
    const uint64_t sn = b >= 32 ? sum >> (b - 32) : sum << (32 - b);
    const uint64_t r0 = (((uint64_t)p->output_multiplier << 32) + (sn >> 1)) / sn;
    int j = (64 - __builtin_clzll(r0)) - 15;
    uint64_t rr = (r0 + ((uint64_t)1 << (j - 1))) >> j;
    if (rr == (1u << 15)) { rr = 1u << 14; j++; }
    const int s = p->output_shift + b - j - 15;
    *r = (uint32_t)rr;
    *t1 = s - 1 < 15 ? s - 1 : 15;
}

/// One softmax output code from e (IntegerSoftmax.referenceRow, last loop).
static inline int8_t mvnl_softmax_output(uint32_t e, uint32_t r, int t1, int32_t zp) {
    const uint32_t t = (e * r + (1u << 14)) >> 15;
    uint32_t q = ((t >> t1) + 1) >> 1;
    const uint32_t hi = (uint32_t)(127 - zp);
    if (q > hi) q = hi;
    return (int8_t)((int32_t)q + zp);
}

/// The e of a row tail, from i to n, into e[] (SIMD order does not matter past the vector part:
/// the tail's e sit at their own index); returns their sum.
static inline uint64_t mvnl_softmax_tail_exp(const int32_t *s, int32_t m, int32_t i, int32_t n, uint16_t *e,
                                             const mv_softmax_params *p) {
    uint64_t sum = 0;
    for (; i < n; i++) {
        const uint32_t v = mvnl_exp_q15((uint32_t)m - (uint32_t)s[i], p);
        e[i] = (uint16_t)v;
        sum += v;
    }
    return sum;
}

/// Per-token factors (IntegerLayerNorm.tokenFactor, steps 1-4): n = (a·K − L) >> 16 in wrapping
/// int32. No division: a reciprocal square root by a seed and two Newton steps in 64-bit fixed point.
static inline void mvnl_layernorm_factor(int32_t sum, int32_t sumsq, const mv_layernorm_params *p,
                                         int32_t *k, int32_t *l) {
    const int64_t v = (int64_t)p->channels * sumsq - (int64_t)sum * sum;
    const uint64_t w = ((uint64_t)v << p->variance_shift) + p->epsilon_term;
    if (w == 0) {
        *k = 0;
        *l = -32768;
        return;
    }
    const int e = (65 - __builtin_clzll(w)) >> 1;  // ceil(bitLength / 2)
    const uint64_t m = 2 * e <= 32 ? w << (32 - 2 * e) : w >> (2 * e - 32);  // [2^30, 2^32)
    uint64_t y = p->rsqrt_seeds[(m >> 24) - 64];
    for (int it = 0; it < 2; it++) {
        const uint64_t z = ((y * y) >> 31) * m;
        y = (y * ((((uint64_t)3 << 61) - z) >> 31)) >> 31;
    }
    // K = round(C·F), L = round(Σa·F) − 2^15 with F = y·2^sh unrounded, modulo 2^32.
    const int sh = (p->variance_shift >> 1) + p->norm_shift - e - 14;  // -38...12
    const int64_t cy = (int64_t)p->channels * (int64_t)y, sy = (int64_t)sum * (int64_t)y;
    const int64_t kk = sh >= 0 ? (int64_t)((uint64_t)cy << sh) : (cy + ((int64_t)1 << (-sh - 1))) >> (-sh);
    const int64_t ll = sh >= 0 ? (int64_t)((uint64_t)sy << sh) : (sy + ((int64_t)1 << (-sh - 1))) >> (-sh);
    *k = (int32_t)(uint32_t)(uint64_t)kk;
    *l = (int32_t)(uint32_t)((uint64_t)ll - 32768u);
}

/// One LayerNorm output (IntegerLayerNorm.referenceToken, last loop).
static inline int8_t mvnl_layernorm_output(int8_t x, int32_t k, int32_t l, int32_t g, int32_t h, int32_t bias,
                                           int32_t zp) {
    const int32_t n = (int32_t)((uint32_t)x * (uint32_t)k - (uint32_t)l) >> 16;
    int32_t y = (n * g + bias) >> h, lo = -128 - zp, hi = 127 - zp;
    y = y < lo ? lo : (y > hi ? hi : y);
    return (int8_t)(y + zp);
}

/// AddInt8.add: the specification, for the SIMD rows' tails.
static inline int8_t mvnl_add(int8_t a, int8_t b, const mv_add_params *p) {
    int32_t s = ((int32_t)a - p->zero_point_a) * p->multiplier_a + ((int32_t)b - p->zero_point_b) * p->multiplier_b;
    int32_t q = ((s + (1 << (p->shift - 1))) >> p->shift) + p->output_zero_point;
    return (int8_t)(q < p->clamp_min ? p->clamp_min : (q > p->clamp_max ? p->clamp_max : q));
}

/// The constant term of the SIMD rows' sum: the zero points, the rounding and z_y·2^shift folded
/// into one int32, so that `(a·ma + b·mb + mvnl_add_bias(p)) >> shift` is the clamped value's
/// pre-image (|·| < 2^30 for validated parameters).
static inline int32_t mvnl_add_bias(const mv_add_params *p) {
    return (1 << (p->shift - 1)) + p->output_zero_point * (1 << p->shift)
        - p->zero_point_a * p->multiplier_a - p->zero_point_b * p->multiplier_b;
}

/// The two multipliers as the int16 pair (ma, mb) of every 32-bit lane, the operand of a pairwise
/// 16-bit multiply-add of interleaved (a, b) words.
static inline int32_t mvnl_add_multiplier_pair(const mv_add_params *p) {
    return (int32_t)(((uint32_t)p->multiplier_b << 16) | ((uint32_t)p->multiplier_a & 0xFFFFu));
}

/// Defines mv_softmax_rows_<isa>, mv_layernorm_rows_<isa> and mv_add_rows_<isa> as stubs that
/// trap, for the file of an ISA compiled on the other architecture (the rule of mv_nonlinear.h).
#define MVNL_TRAPPING_STUBS(isa)                                                                    \
    void mv_softmax_rows_##isa(const int32_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride, \
                               int32_t n, int32_t rows, const mv_softmax_params *p, int32_t *scratch) { \
        (void)in; (void)in_stride; (void)out; (void)out_stride; (void)n; (void)rows; (void)p; (void)scratch; \
        __builtin_trap();                                                                           \
    }                                                                                               \
    void mv_layernorm_rows_##isa(const int8_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride, \
                                 int32_t tokens, const mv_layernorm_params *p) {                    \
        (void)in; (void)in_stride; (void)out; (void)out_stride; (void)tokens; (void)p;              \
        __builtin_trap();                                                                           \
    }                                                                                               \
    void mv_add_rows_##isa(const int8_t *a, ptrdiff_t a_stride, const int8_t *b, ptrdiff_t b_stride, \
                           int8_t *out, ptrdiff_t out_stride, int32_t columns, int32_t rows,        \
                           const mv_add_params *p) {                                                \
        (void)a; (void)a_stride; (void)b; (void)b_stride; (void)out; (void)out_stride; (void)columns; \
        (void)rows; (void)p;                                                                        \
        __builtin_trap();                                                                           \
    }

#endif
