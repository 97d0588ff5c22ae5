// NEON (AArch64 Advanced SIMD) rows of the integer non-linear kernels, bit-exact with the Swift
// references (see mv_nonlinear.h). AArch64; elsewhere each function is a stub that traps.
#include "mv_nonlinear_internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>

// ---------------------------------------------------------------------------------------------
// Helpers

/// Eight int32 (within -128..127) in two vectors to eight int8.
static inline int8x8_t mvnl_narrow8(int32x4_t a, int32x4_t b) {
    return vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)));
}

/// Eight int8 sign-extended to two int32x4.
static inline void mvnl_widen8(const int8_t *src, int32x4_t *lo, int32x4_t *hi) {
    int16x8_t w = vmovl_s8(vld1_s8(src));
    *lo = vmovl_s16(vget_low_s16(w));
    *hi = vmovl_high_s16(w);
}

/// clamp(z + zp, lo, hi) without overflow.
static inline int32x4_t mvnl_zp_clamp_neon(int32x4_t z, int32x4_t zp, int32x4_t lo_minus_zp, int32x4_t hi_minus_zp) {
    return vaddq_s32(vminq_s32(vmaxq_s32(z, lo_minus_zp), hi_minus_zp), zp);
}

// ---------------------------------------------------------------------------------------------
// Softmax

/// High 16 bits of the unsigned 16x16-bit products (what x86's pmulhuw gives).
static inline uint16x8_t mvnl_mulhi_u16(uint16x8_t a, uint16x8_t b) {
    return vuzp2q_u16(vreinterpretq_u16_u32(vmull_u16(vget_low_u16(a), vget_low_u16(b))),
                      vreinterpretq_u16_u32(vmull_high_u16(a, b)));
}

/// d' (IntegerSoftmax steps 1-2) of 4 scores, before the saturating narrow to 16 bits: one shift
/// by a - r (at most one of them is non-zero; vshl shifts right for negative counts), after a
/// clamp at 2^(16-a) that keeps a left shift within 32 bits (no clamp where r > 0).
static inline uint32x4_t mvnl_softmax_d4(const int32_t *s, uint32x4_t vm, uint32x4_t vlimit, int32x4_t vshift) {
    return vshlq_u32(vminq_u32(vsubq_u32(vm, vreinterpretq_u32_s32(vld1q_s32(s))), vlimit), vshift);
}

static void mvnl_softmax_row_neon(const int32_t *s, int8_t *out, int32_t n, const mv_softmax_params *p,
                                  uint16_t *e) {
    int32_t i = 0;
    int32x4_t vmax = vdupq_n_s32(INT32_MIN);
    for (; i + 4 <= n; i += 4) vmax = vmaxq_s32(vmax, vld1q_s32(s + i));
    int32_t m = vmaxvq_s32(vmax);
    for (; i < n; i++) m = s[i] > m ? s[i] : m;

    const uint32x4_t vm = vdupq_n_u32((uint32_t)m);
    const uint32x4_t vlimit = vdupq_n_u32(p->exp_pre_shift > 0 ? 0xFFFFFFFFu : 1u << (16 - p->exp_left_shift));
    const int32x4_t vshift = vdupq_n_s32(p->exp_left_shift - p->exp_pre_shift);
    const uint16x8_t vmult = vdupq_n_u16((uint16_t)p->exp_multiplier);
    const uint16x8_t c0 = vdupq_n_u16(65531), c1 = vdupq_n_u16(45300), c2 = vdupq_n_u16(15112), c3 = vdupq_n_u16(2579);
    const uint16x8_t zero = vdupq_n_u16(0);
    uint32x4_t vsum = vdupq_n_u32(0), vsum2 = vdupq_n_u32(0);
    // e of 8 scores: d' (steps 1-2) in 32-bit lanes, narrowed with saturation; u, the polynomial
    // and the shift in 16-bit lanes.
#define MVNL_SOFTMAX_E8(V, S)                                                                                 \
    do {                                                                                                  \
        const uint16x8_t d = vcombine_u16(vqmovn_u32(mvnl_softmax_d4((S), vm, vlimit, vshift)),             \
                                          vqmovn_u32(mvnl_softmax_d4((S) + 4, vm, vlimit, vshift)));        \
        const uint16x8_t u = mvnl_mulhi_u16(vqaddq_u16(d, vdupq_n_u16(1)), vmult);                        \
        const int16x8_t k = vreinterpretq_s16_u16(vshrq_n_u16(u, 11));                                   \
        const uint16x8_t y = vshlq_n_u16(u, 5); /* (u & 2047) << 5 */                                     \
        uint16x8_t a = vsubq_u16(c2, mvnl_mulhi_u16(c3, y));                                              \
        a = vsubq_u16(c1, mvnl_mulhi_u16(a, y));                                                          \
        const uint16x8_t pw = vsubq_u16(c0, mvnl_mulhi_u16(a, y));                                        \
        /* P >> k (0 for k >= 16), then ((P >> k) + 1) >> 1. */                                           \
        (V) = vrhaddq_u16(vshlq_u16(pw, vnegq_s16(k)), zero);                                             \
    } while (0)
    // Four independent blocks per step: each is a chain of about 20 dependent operations, which
    // alone would leave the pipelines idle (llvm-mca: 8.5 cycles per score with one, 4.4 with two).
    for (i = 0; i + 32 <= n; i += 32) {
        uint16x8_t v0, v1, v2, v3;
        MVNL_SOFTMAX_E8(v0, s + i);
        MVNL_SOFTMAX_E8(v1, s + i + 8);
        MVNL_SOFTMAX_E8(v2, s + i + 16);
        MVNL_SOFTMAX_E8(v3, s + i + 24);
        vst1q_u16(e + i, v0);
        vst1q_u16(e + i + 8, v1);
        vst1q_u16(e + i + 16, v2);
        vst1q_u16(e + i + 24, v3);
        vsum = vpadalq_u16(vsum, v0);
        vsum2 = vpadalq_u16(vsum2, v1);
        vsum = vpadalq_u16(vsum, v2);
        vsum2 = vpadalq_u16(vsum2, v3);
    }
    for (; i + 16 <= n; i += 16) {
        uint16x8_t v0, v1;
        MVNL_SOFTMAX_E8(v0, s + i);
        MVNL_SOFTMAX_E8(v1, s + i + 8);
        vst1q_u16(e + i, v0);
        vst1q_u16(e + i + 8, v1);
        vsum = vpadalq_u16(vsum, v0);
        vsum2 = vpadalq_u16(vsum2, v1);
    }
    if (i + 8 <= n) {
        uint16x8_t v0;
        MVNL_SOFTMAX_E8(v0, s + i);
        vst1q_u16(e + i, v0);
        vsum = vpadalq_u16(vsum, v0);
        i += 8;
    }
#undef MVNL_SOFTMAX_E8
    vsum = vaddq_u32(vsum, vsum2);
    uint64_t sum = vaddlvq_u32(vsum);  // lane sums < 2^31 for n <= 2^19
    sum += mvnl_softmax_tail_exp(s, m, i, n, e, p);

    uint32_t r;
    int t1;
    mvnl_softmax_reciprocal(sum, p, &r, &t1);
    const int16x8_t vr = vdupq_n_s16((int16_t)r);
    const int16x8_t vt1 = vdupq_n_s16((int16_t)-t1);
    const uint16x8_t vhi = vdupq_n_u16((uint16_t)(127 - p->output_zero_point));
    const int16x8_t zp = vdupq_n_s16((int16_t)p->output_zero_point);
    // (e·R + 2^14) >> 15 by the rounding doubling high multiply (e, R < 2^15: no saturation), then
    // the rounding shift, the clamp and the zero point; 8 codes.
#define MVNL_SOFTMAX_Q8(E)                                                                            \
    vmovn_s16(vaddq_s16(vreinterpretq_s16_u16(vminq_u16(                                             \
        vrhaddq_u16(vshlq_u16(vreinterpretq_u16_s16(vqrdmulhq_s16(vreinterpretq_s16_u16(vld1q_u16(E)), vr)), vt1), zero), \
        vhi)), zp))
    for (i = 0; i + 32 <= n; i += 32) {  // four independent chains per step
        vst1q_s8(out + i, vcombine_s8(MVNL_SOFTMAX_Q8(e + i), MVNL_SOFTMAX_Q8(e + i + 8)));
        vst1q_s8(out + i + 16, vcombine_s8(MVNL_SOFTMAX_Q8(e + i + 16), MVNL_SOFTMAX_Q8(e + i + 24)));
    }
    for (; i + 8 <= n; i += 8) vst1_s8(out + i, MVNL_SOFTMAX_Q8(e + i));
#undef MVNL_SOFTMAX_Q8
    for (; i < n; i++) out[i] = mvnl_softmax_output(e[i], r, t1, p->output_zero_point);
}

void mv_softmax_rows_neon(const int32_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                          int32_t n, int32_t rows, const mv_softmax_params *p, int32_t *scratch) {
    for (int32_t r = 0; r < rows; r++)
        mvnl_softmax_row_neon(in + r * in_stride, out + r * out_stride, n, p, (uint16_t *)scratch);
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

static void mvnl_layernorm_token_neon(const int8_t *x, int8_t *out, const mv_layernorm_params *p) {
    const int32_t c = p->channels;
    int32_t i = 0;
    int32x4_t vs = vdupq_n_s32(0), vq = vdupq_n_s32(0);
    for (; i + 16 <= c; i += 16) {
        int8x16_t a = vld1q_s8(x + i);
        int16x8_t lo = vmovl_s8(vget_low_s8(a)), hi = vmovl_high_s8(a);
        vs = vpadalq_s16(vs, vaddq_s16(lo, hi));
        vq = vpadalq_s16(vq, vmulq_s16(lo, lo));  // a² ≤ 16384 fits int16
        vq = vpadalq_s16(vq, vmulq_s16(hi, hi));
    }
    int32_t sum = vaddvq_s32(vs), sq = vaddvq_s32(vq);
    for (; i < c; i++) {
        int32_t a = x[i];
        sum += a;
        sq += a * a;
    }

    int32_t k, l;
    mvnl_layernorm_factor(sum, sq, p, &k, &l);
    const int32x4_t vk = vdupq_n_s32(k), vl = vdupq_n_s32(l);
    const int32x4_t zp = vdupq_n_s32(p->output_zero_point);
    const int32x4_t olo = vdupq_n_s32(-128 - p->output_zero_point);
    const int32x4_t ohi = vdupq_n_s32(127 - p->output_zero_point);
    // Output code of 4 channels (their first at channel ch) from widened inputs, in 32-bit lanes:
    // n = (a·K − L) >> 16 (wrapping), y = (n·G + B) >> h.
#define MVNL_LAYERNORM_Z4(Z, A, CH)                                                                   \
    do {                                                                                          \
        const int ch_ = (CH);                                                                     \
        const int32x4_t n = vshrq_n_s32(vsubq_s32(vmulq_s32((A), vk), vl), 16);                   \
        const int32x4_t y = vmlaq_s32(vld1q_s32(p->biases + ch_), n, vld1q_s32(p->gamma_multipliers + ch_)); \
        (Z) = mvnl_zp_clamp_neon(vshlq_s32(y, vnegq_s32(vld1q_s32(p->shifts + ch_))), zp, olo, ohi); \
    } while (0)
    // 16 channels per step: four independent chains.
    for (i = 0; i + 16 <= c; i += 16) {
        int32x4_t a[4], z[4];
        mvnl_widen8(x + i, &a[0], &a[1]);
        mvnl_widen8(x + i + 8, &a[2], &a[3]);
        for (int j = 0; j < 4; j++) MVNL_LAYERNORM_Z4(z[j], a[j], i + 4 * j);
        vst1q_s8(out + i, vcombine_s8(mvnl_narrow8(z[0], z[1]), mvnl_narrow8(z[2], z[3])));
    }
    for (; i + 8 <= c; i += 8) {
        int32x4_t a[2], z[2];
        mvnl_widen8(x + i, &a[0], &a[1]);
        for (int j = 0; j < 2; j++) MVNL_LAYERNORM_Z4(z[j], a[j], i + 4 * j);
        vst1_s8(out + i, mvnl_narrow8(z[0], z[1]));
    }
#undef MVNL_LAYERNORM_Z4
    for (; i < c; i++)
        out[i] = mvnl_layernorm_output(x[i], k, l, p->gamma_multipliers[i], p->shifts[i], p->biases[i],
                                       p->output_zero_point);
}

void mv_layernorm_rows_neon(const int8_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                            int32_t tokens, const mv_layernorm_params *p) {
    for (int32_t t = 0; t < tokens; t++) mvnl_layernorm_token_neon(in + t * in_stride, out + t * out_stride, p);
}

// ---------------------------------------------------------------------------------------------
// Add

/// Eight outputs of the add as int16: the products by vmull_s16/vmlal_s16 onto the bias
/// (zero points, rounding, z_y·2^shift), the flooring shift by vshlq_s32 with a negative count,
/// then narrowed with saturation (the clamp range lies within int8).
static inline int16x8_t mvnl_add8(int8x8_t a8, int8x8_t b8, int16x4_t ma, int16x4_t mb, int32x4_t bias,
                                  int32x4_t shift) {
    const int16x8_t a = vmovl_s8(a8), b = vmovl_s8(b8);
    int32x4_t lo = vmlal_s16(vmlal_s16(bias, vget_low_s16(a), ma), vget_low_s16(b), mb);
    int32x4_t hi = vmlal_s16(vmlal_s16(bias, vget_high_s16(a), ma), vget_high_s16(b), mb);
    return vcombine_s16(vqmovn_s32(vshlq_s32(lo, shift)), vqmovn_s32(vshlq_s32(hi, shift)));
}

void mv_add_rows_neon(const int8_t *a, ptrdiff_t a_stride, const int8_t *b, ptrdiff_t b_stride,
                      int8_t *out, ptrdiff_t out_stride, int32_t columns, int32_t rows, const mv_add_params *p) {
    const int16x4_t ma = vdup_n_s16((int16_t)p->multiplier_a), mb = vdup_n_s16((int16_t)p->multiplier_b);
    const int32x4_t bias = vdupq_n_s32(mvnl_add_bias(p)), shift = vdupq_n_s32(-p->shift);
    const int8x16_t lo = vdupq_n_s8((int8_t)p->clamp_min), hi = vdupq_n_s8((int8_t)p->clamp_max);
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *pa = a + r * a_stride, *pb = b + r * b_stride;
        int8_t *po = out + r * out_stride;
        int32_t i = 0;
        for (; i + 16 <= columns; i += 16) {
            const int8x16_t va = vld1q_s8(pa + i), vb = vld1q_s8(pb + i);
            const int16x8_t w0 = mvnl_add8(vget_low_s8(va), vget_low_s8(vb), ma, mb, bias, shift);
            const int16x8_t w1 = mvnl_add8(vget_high_s8(va), vget_high_s8(vb), ma, mb, bias, shift);
            const int8x16_t q = vcombine_s8(vqmovn_s16(w0), vqmovn_s16(w1));
            vst1q_s8(po + i, vminq_s8(vmaxq_s8(q, lo), hi));
        }
        for (; i + 8 <= columns; i += 8) {
            const int8x8_t q = vqmovn_s16(mvnl_add8(vld1_s8(pa + i), vld1_s8(pb + i), ma, mb, bias, shift));
            vst1_s8(po + i, vmin_s8(vmax_s8(q, vget_low_s8(lo)), vget_low_s8(hi)));
        }
        for (; i < columns; i++) po[i] = mvnl_add(pa[i], pb[i], p);
    }
}

#else
MVNL_TRAPPING_STUBS(neon)  // the rule of mv_nonlinear.h: off AArch64, every entry traps
#endif
