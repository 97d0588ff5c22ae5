// NEON int8 GEMM for cores without the dot-product extension (Cortex-A72): 2x8 tiles, K in steps
// of 16 (KR = 16). Per (row, column): `smull` of the low 8 products, `smlal` of the high 8 into
// int16 (|sum| <= 2*128*127 fits when B has no -128), then `sadalp` into int32. When B contains
// -128 (activations used as B in attention) each half is accumulated separately.
#include "mv_int8_internal.h"

#if defined(__aarch64__)
#include "mv_int8_neon.h"

#define MR MV_NEON_MR
#define NR MV_NEON_NR

static inline void step_pair(int32x4_t *acc, int8x16_t a0, int8x16_t a1, const int8_t *b) {
    for (int j = 0; j < NR; j++) {
        const int8x16_t bj = vld1q_s8(b + 16 * j);
        int16x8_t p0 = vmull_s8(vget_low_s8(a0), vget_low_s8(bj));
        int16x8_t p1 = vmull_s8(vget_low_s8(a1), vget_low_s8(bj));
        p0 = vmlal_high_s8(p0, a0, bj);
        p1 = vmlal_high_s8(p1, a1, bj);
        acc[j] = vpadalq_s16(acc[j], p0);
        acc[NR + j] = vpadalq_s16(acc[NR + j], p1);
    }
}

static inline void step_safe(int32x4_t *acc, int8x16_t a0, int8x16_t a1, const int8_t *b) {
    for (int j = 0; j < NR; j++) {
        const int8x16_t bj = vld1q_s8(b + 16 * j);
        acc[j] = vpadalq_s16(acc[j], vmull_s8(vget_low_s8(a0), vget_low_s8(bj)));
        acc[NR + j] = vpadalq_s16(acc[NR + j], vmull_s8(vget_low_s8(a1), vget_low_s8(bj)));
        acc[j] = vpadalq_s16(acc[j], vmull_high_s8(a0, bj));
        acc[NR + j] = vpadalq_s16(acc[NR + j], vmull_high_s8(a1, bj));
    }
}

static void gemm_neon(const mv_gemm_args *p, int int32_out) {
    const size_t k = p->k, n = p->n, kp = (k + 15) & ~(size_t)15, kfull = k & ~(size_t)15;
    const int8_t *packed = (const int8_t *)p->packed;
    const int safe = (p->flags & MV_GEMM_B_HAS_MIN) != 0;
    const int16x8_t zp = vdupq_n_s16((int16_t)p->output_zero_point);
    const int8x8_t lo = vdup_n_s8((int8_t)p->clamp_min), hi = vdup_n_s8((int8_t)p->clamp_max);
    for (size_t m0 = 0; m0 < p->m; m0 += MR) {
        const int mr = p->m - m0 < MR ? (int)(p->m - m0) : MR;
        const int8_t *a0 = mv_a_row(p, m0), *a1 = mr > 1 ? mv_a_row(p, m0 + 1) : a0;
        int8_t t0[16] = {0}, t1[16] = {0};
        memcpy(t0, a0 + kfull, k - kfull);
        memcpy(t1, a1 + kfull, k - kfull);
        int32_t roff[MR] = {0, 0};
        if (p->b_zero_point) {
            roff[0] = mv_row_correction(a0, k, p->b_zero_point);
            roff[1] = mv_row_correction(a1, k, p->b_zero_point);
        }
        for (size_t n0 = 0; n0 < n; n0 += NR) {
            const size_t nv = n - n0 < NR ? n - n0 : NR;
            const int8_t *b = packed + n0 * kp;
            int32x4_t acc[2 * NR];
            for (int i = 0; i < 2 * NR; i++) acc[i] = vdupq_n_s32(0);
            if (safe) {
                for (size_t kk = 0; kk < kfull; kk += 16, b += 16 * NR) step_safe(acc, vld1q_s8(a0 + kk), vld1q_s8(a1 + kk), b);
                if (kfull < k) step_safe(acc, vld1q_s8(t0), vld1q_s8(t1), b);
            } else {
                for (size_t kk = 0; kk < kfull; kk += 16, b += 16 * NR) step_pair(acc, vld1q_s8(a0 + kk), vld1q_s8(a1 + kk), b);
                if (kfull < k) step_pair(acc, vld1q_s8(t0), vld1q_s8(t1), b);
            }
            const int32x4_t bias0 = vld1q_s32(p->bias + n0), bias1 = vld1q_s32(p->bias + n0 + 4);
            int32x4_t s[MR][2];
            for (int r = 0; r < MR; r++) {
                const int32x4_t *c = acc + r * NR;
                const int32x4_t ro = vdupq_n_s32(roff[r]);
                s[r][0] = vaddq_s32(vaddq_s32(vpaddq_s32(vpaddq_s32(c[0], c[1]), vpaddq_s32(c[2], c[3])), bias0), ro);
                s[r][1] = vaddq_s32(vaddq_s32(vpaddq_s32(vpaddq_s32(c[4], c[5]), vpaddq_s32(c[6], c[7])), bias1), ro);
            }
            if (int32_out) {
                for (int r = 0; r < mr; r++) {
                    int32_t tmp[8];
                    vst1q_s32(tmp, s[r][0]);
                    vst1q_s32(tmp + 4, s[r][1]);
                    memcpy(mv_c_row32(p, m0 + r) + n0, tmp, nv * 4);
                }
            } else {
                const rqn_consts q0 = rqn_prepare(p->multiplier + n0, p->shift + n0);
                const rqn_consts q1 = rqn_prepare(p->multiplier + n0 + 4, p->shift + n0 + 4);
                for (int r = 0; r < mr; r++) {
                    const int8x8_t v = rqn_narrow(rqn_apply(s[r][0], q0), rqn_apply(s[r][1], q1), zp, lo, hi);
                    int8_t *dst = mv_c_row8(p, m0 + r) + n0;
                    if (nv == NR) {
                        vst1_s8(dst, v);
                    } else {
                        int8_t tmp[8];
                        vst1_s8(tmp, v);
                        memcpy(dst, tmp, nv);
                    }
                    if (p->lut) mv_apply_lut_at(dst, nv, p->lut, p->lut_stride, n0);
                }
            }
        }
    }
}

void mv_gemm_q8_neon(const mv_gemm_args *p) { gemm_neon(p, 0); }
void mv_gemm_i32_neon(const mv_gemm_args *p) { gemm_neon(p, 1); }

#else
void mv_gemm_q8_neon(const mv_gemm_args *p) { (void)p; __builtin_trap(); }
void mv_gemm_i32_neon(const mv_gemm_args *p) { (void)p; __builtin_trap(); }
#endif
