// Scalar helpers shared by nonlinear_avx2.c and nonlinear_neon.c (row tails, per-row and
// per-token scalars). Each mirrors the Swift specification line for line.
#ifndef MV_NONLINEAR_INTERNAL_H
#define MV_NONLINEAR_INTERNAL_H
#include "include/mv_nonlinear.h"
#include "mv_int8_internal.h"

/// 2^17 * 2^(-x/16384), x in 0..16383 (IntegerSoftmax.exp2Fraction).
static inline uint32_t mvnl_exp2_fraction(uint32_t x) {
    uint32_t a = 222608u - ((227070u * x) >> 17);
    a = 250967u - ((a * x) >> 16);
    a = 181673u - ((a * x) >> 16);
    return 131071u - ((a * x) >> 15);
}

/// e in Q30 for a score difference (IntegerSoftmax.expQ30).
static inline uint32_t mvnl_exp_q30(uint32_t diff, const mv_softmax_params *p) {
    uint32_t d = diff < p->max_difference ? diff : p->max_difference;
    uint32_t u = (uint32_t)(((uint64_t)d * p->exp_multiplier + ((uint64_t)1 << (p->exp_shift - 1))) >> p->exp_shift);
    uint32_t k = u >> 14;
    if (k > 31) k = 31;
    return (mvnl_exp2_fraction(u & 0x3FFFu) << 13) >> k;
}

/// Per-row output multiplier and shift from the sum of e (IntegerSoftmax.reciprocal).
static inline void mvnl_softmax_reciprocal(uint64_t sum, const mv_softmax_params *p, uint64_t *r, int *s) {
    int b = 64 - __builtin_clzll(sum);
    uint64_t sn = b >= 32 ? sum >> (b - 32) : sum << (32 - b);
    uint64_t rr = (((uint64_t)p->output_multiplier << 32) + (sn >> 1)) / sn;
    int ss = p->output_shift + b;
    if (ss >= 63) { rr = 0; ss = 1; }
    *r = rr;
    *s = ss;
}

/// One softmax output code from e (IntegerSoftmax.referenceRow, last loop).
static inline int8_t mvnl_softmax_output(uint32_t e, uint64_t r, int s, int32_t zp) {
    int32_t v = (int32_t)(((uint64_t)e * r + ((uint64_t)1 << (s - 1))) >> s);
    int32_t lo = -128 - zp, hi = 127 - zp;
    v = v < lo ? lo : (v > hi ? hi : v);
    return (int8_t)(v + zp);
}

/// floor(sqrt(x)) (integerSquareRoot).
static inline uint64_t mvnl_isqrt(uint64_t x) {
    if (x < 2) return x;
    int bits = 64 - __builtin_clzll(x);
    uint64_t y = (uint64_t)1 << ((bits + 1) / 2);
    for (;;) {
        uint64_t next = (y + x / y) >> 1;
        if (next >= y) return y;
        y = next;
    }
}

/// round(sqrt(x)) (integerSquareRootRounded).
static inline uint64_t mvnl_isqrt_rounded(uint64_t x) {
    uint64_t r = mvnl_isqrt(x);
    return x - r * r > r ? r + 1 : r;
}

/// Per-token normalising multiplier F and shift t (IntegerLayerNorm.tokenFactor).
static inline void mvnl_layernorm_factor(int32_t sum, int32_t sumsq, const mv_layernorm_params *p,
                                         int64_t *f, int *t) {
    int64_t v = (int64_t)p->channels * sumsq - (int64_t)sum * sum;
    uint64_t w = ((uint64_t)v << p->variance_shift) + p->epsilon_term;
    uint64_t r = mvnl_isqrt_rounded(w);
    if (r < 1) r = 1;
    int pw = (64 - __builtin_clzll(r)) + 29;
    *f = (int64_t)((((uint64_t)1 << pw) + (r >> 1)) / r);
    *t = pw - (p->variance_shift >> 1) - 16;
}

/// One LayerNorm output (IntegerLayerNorm.referenceToken, last loop).
static inline int8_t mvnl_layernorm_output(int8_t x, int32_t c, int32_t sum, int64_t f, int t, int64_t round,
                                           int32_t g, int32_t h, int64_t bias, int32_t zp) {
    int32_t d = c * (int32_t)x - sum;
    int64_t n = ((int64_t)d * f + round) >> t;
    int64_t y = (n * g + bias) >> h;
    int32_t z = (int32_t)y, lo = -128 - zp, hi = 127 - zp;
    z = z < lo ? lo : (z > hi ? hi : z);
    return (int8_t)(z + zp);
}

/// requantize() of Requantization.swift (the int8 kernels' scalar version).
static inline int32_t mvnl_requantize(int32_t acc, int32_t mult, int32_t shift) {
    return mv_requantize_scalar(acc, mult, shift);
}

/// clamp(z + zp, lo, hi) without overflow (addZeroPointAndClamp).
static inline int8_t mvnl_zp_clamp(int32_t z, int32_t zp, int32_t lo, int32_t hi) {
    int32_t l = lo - zp, h = hi - zp;
    z = z < l ? l : (z > h ? h : z);
    return (int8_t)(z + zp);
}

static inline int8_t mvnl_add(int8_t a, int8_t b, const mv_add_params *p) {
    int32_t xa = ((int32_t)a - p->zero_point_a) * (1 << 20);
    int32_t xb = ((int32_t)b - p->zero_point_b) * (1 << 20);
    int32_t s = mvnl_requantize(xa, p->multiplier_a, p->shift_a) + mvnl_requantize(xb, p->multiplier_b, p->shift_b);
    return mvnl_zp_clamp(mvnl_requantize(s, p->output_multiplier, p->output_shift), p->output_zero_point,
                         p->clamp_min, p->clamp_max);
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
