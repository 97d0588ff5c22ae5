// Scalar helpers shared by nonlinear_avx2.c and nonlinear_neon.c (row tails, per-row and
// per-token scalars). Each mirrors the Swift specification line for line.
#ifndef MV_NONLINEAR_INTERNAL_H
#define MV_NONLINEAR_INTERNAL_H
#include "include/mv_nonlinear.h"
#include "mv_int8_internal.h"

/// 2^16 * 2^(-x/2048), x in 0..2047 (IntegerSoftmax.exp2Fraction).
static inline uint32_t mvnl_exp2_fraction(uint32_t x) {
    const uint32_t y = x << 5;
    uint32_t a = 15112u - ((2579u * y) >> 16);
    a = 45300u - ((a * y) >> 16);
    return 65531u - ((a * y) >> 16);
}

/// e in Q15 for a score difference (IntegerSoftmax.expQ15).
static inline uint32_t mvnl_exp_q15(uint32_t diff, const mv_softmax_params *p) {
    const uint32_t d = diff < p->max_difference ? diff : p->max_difference;
    const uint32_t half = p->exp_pre_shift > 0 ? 1u << (p->exp_pre_shift - 1) : 0;
    const uint32_t dp = (d + half) >> p->exp_pre_shift;
    const uint32_t u = (dp * p->exp_multiplier + (1u << (p->exp_shift - 1))) >> p->exp_shift;
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

/// ceil(16 * sqrt(t + 1)) for t = 64 ... 255: an over-estimate of the square root from the top 8
/// bits, so Newton's iteration below starts within 2% (about 3 divisions fewer than from a power of
/// two; the divisions were a quarter of LayerNorm's time).
static const uint16_t mvnl_isqrt_seed[192] = {
    129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144,
    144, 145, 146, 147, 148, 149, 150, 151, 151, 152, 153, 154, 155, 156, 156, 157,
    158, 159, 160, 160, 161, 162, 163, 164, 164, 165, 166, 167, 168, 168, 169, 170,
    171, 171, 172, 173, 174, 174, 175, 176, 176, 177, 178, 179, 179, 180, 181, 182,
    182, 183, 184, 184, 185, 186, 186, 187, 188, 188, 189, 190, 190, 191, 192, 192,
    193, 194, 194, 195, 196, 196, 197, 198, 198, 199, 200, 200, 201, 202, 202, 203,
    204, 204, 205, 205, 206, 207, 207, 208, 208, 209, 210, 210, 211, 212, 212, 213,
    213, 214, 215, 215, 216, 216, 217, 218, 218, 219, 219, 220, 220, 221, 222, 222,
    223, 223, 224, 224, 225, 226, 226, 227, 227, 228, 228, 229, 230, 230, 231, 231,
    232, 232, 233, 233, 234, 235, 235, 236, 236, 237, 237, 238, 238, 239, 239, 240,
    240, 241, 242, 242, 243, 243, 244, 244, 245, 245, 246, 246, 247, 247, 248, 248,
    249, 249, 250, 250, 251, 251, 252, 252, 253, 253, 254, 254, 255, 255, 256, 256,
};

/// floor(sqrt(x)) (integerSquareRoot): Newton's iteration from an over-estimate, which decreases
/// monotonically to the floor of the root (the classic integer square root; any start >= the root
/// gives the same result).
static inline uint64_t mvnl_isqrt(uint64_t x) {
    if (x < 2) return x;
    const int bits = 64 - __builtin_clzll(x);
    const int s = (bits - 1) & ~1;  // x in [2^s, 2^(s+2))
    uint64_t y;
    if (s >= 6) {
        // t = the top 8 bits; sqrt(x) < sqrt(t + 1) * 2^((s - 6) / 2) <= seed * 2^((s - 6) / 2) / 16.
        const uint64_t t = x >> (s - 6);
        y = (((uint64_t)mvnl_isqrt_seed[t - 64] << ((s - 6) / 2)) + 15) >> 4;
    } else {
        y = (uint64_t)1 << ((bits + 1) / 2);
    }
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
