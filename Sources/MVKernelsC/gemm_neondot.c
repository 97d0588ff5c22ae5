// NEON int8 GEMM with the dot-product extension (Cortex-A76 / Pi 5): 4x16 tiles, weights packed in
// groups of 4 k (KR = 4) per column, K padded to 16; each `sdot` by lane multiplies 4 columns by
// one 4-byte group of an A row.
#include "mv_int8_internal.h"

#if defined(__aarch64__)
#include "mv_int8_neon.h"

#define TD __attribute__((target("arch=armv8.2-a+dotprod")))
#define MR MV_NEONDOT_MR
#define NR MV_NEONDOT_NR

#define DOT_LANE(L)                                                                   \
    do {                                                                              \
        const int8x16_t b0 = vld1q_s8(b + 64 * (L)), b1 = vld1q_s8(b + 64 * (L) + 16); \
        const int8x16_t b2 = vld1q_s8(b + 64 * (L) + 32), b3 = vld1q_s8(b + 64 * (L) + 48); \
        c00 = vdotq_laneq_s32(c00, b0, a0, L); c01 = vdotq_laneq_s32(c01, b1, a0, L); \
        c02 = vdotq_laneq_s32(c02, b2, a0, L); c03 = vdotq_laneq_s32(c03, b3, a0, L); \
        c10 = vdotq_laneq_s32(c10, b0, a1, L); c11 = vdotq_laneq_s32(c11, b1, a1, L); \
        c12 = vdotq_laneq_s32(c12, b2, a1, L); c13 = vdotq_laneq_s32(c13, b3, a1, L); \
        c20 = vdotq_laneq_s32(c20, b0, a2, L); c21 = vdotq_laneq_s32(c21, b1, a2, L); \
        c22 = vdotq_laneq_s32(c22, b2, a2, L); c23 = vdotq_laneq_s32(c23, b3, a2, L); \
        c30 = vdotq_laneq_s32(c30, b0, a3, L); c31 = vdotq_laneq_s32(c31, b1, a3, L); \
        c32 = vdotq_laneq_s32(c32, b2, a3, L); c33 = vdotq_laneq_s32(c33, b3, a3, L); \
    } while (0)

TD static inline void kloop_dot(int32x4_t *acc, const int8_t *const *arow, const int8_t *const *tail,
                                size_t kfull, int has_tail, const int8_t *b) {
    int32x4_t c00 = acc[0], c01 = acc[1], c02 = acc[2], c03 = acc[3];
    int32x4_t c10 = acc[4], c11 = acc[5], c12 = acc[6], c13 = acc[7];
    int32x4_t c20 = acc[8], c21 = acc[9], c22 = acc[10], c23 = acc[11];
    int32x4_t c30 = acc[12], c31 = acc[13], c32 = acc[14], c33 = acc[15];
    const int8_t *r0 = arow[0], *r1 = arow[1], *r2 = arow[2], *r3 = arow[3];
    for (size_t kk = 0; kk < kfull; kk += 16, b += 256) {
        const int8x16_t a0 = vld1q_s8(r0 + kk), a1 = vld1q_s8(r1 + kk);
        const int8x16_t a2 = vld1q_s8(r2 + kk), a3 = vld1q_s8(r3 + kk);
        DOT_LANE(0); DOT_LANE(1); DOT_LANE(2); DOT_LANE(3);
    }
    if (has_tail) {
        const int8x16_t a0 = vld1q_s8(tail[0]), a1 = vld1q_s8(tail[1]);
        const int8x16_t a2 = vld1q_s8(tail[2]), a3 = vld1q_s8(tail[3]);
        DOT_LANE(0); DOT_LANE(1); DOT_LANE(2); DOT_LANE(3);
    }
    acc[0] = c00; acc[1] = c01; acc[2] = c02; acc[3] = c03;
    acc[4] = c10; acc[5] = c11; acc[6] = c12; acc[7] = c13;
    acc[8] = c20; acc[9] = c21; acc[10] = c22; acc[11] = c23;
    acc[12] = c30; acc[13] = c31; acc[14] = c32; acc[15] = c33;
}

TD static void gemm_neondot(const mv_gemm_args *p, int int32_out) {
    const size_t k = p->k, n = p->n, kp = (k + 15) & ~(size_t)15, kfull = k & ~(size_t)15;
    const int8_t *packed = (const int8_t *)p->packed;
    const int16x8_t zp = vdupq_n_s16((int16_t)p->output_zero_point);
    const int8x8_t lo = vdup_n_s8((int8_t)p->clamp_min), hi = vdup_n_s8((int8_t)p->clamp_max);
    for (size_t m0 = 0; m0 < p->m; m0 += MR) {
        const int mr = p->m - m0 < MR ? (int)(p->m - m0) : MR;
        const int8_t *arow[MR];
        int8_t tails[MR][16];
        const int8_t *tail[MR];
        int32_t roff[MR];
        for (int r = 0; r < MR; r++) {
            arow[r] = mv_a_row(p, m0 + (r < mr ? r : 0));
            memset(tails[r], 0, 16);
            memcpy(tails[r], arow[r] + kfull, k - kfull);
            tail[r] = tails[r];
            roff[r] = p->b_zero_point ? mv_row_correction(arow[r], k, p->b_zero_point) : 0;
        }
        for (size_t n0 = 0; n0 < n; n0 += NR) {
            const size_t nv = n - n0 < NR ? n - n0 : NR;
            int32x4_t acc[MR * 4];
            for (int r = 0; r < MR; r++)
                for (int c = 0; c < 4; c++)
                    acc[4 * r + c] = vaddq_s32(vld1q_s32(p->bias + n0 + 4 * c), vdupq_n_s32(roff[r]));
            kloop_dot(acc, arow, tail, kfull, kfull < k, packed + n0 * kp);
            if (int32_out) {
                for (int r = 0; r < mr; r++) {
                    int32_t tmp[16];
                    for (int c = 0; c < 4; c++) vst1q_s32(tmp + 4 * c, acc[4 * r + c]);
                    memcpy(mv_c_row32(p, m0 + r) + n0, tmp, nv * 4);
                }
            } else {
                rqn_consts q[4];
                for (int c = 0; c < 4; c++) q[c] = rqn_prepare(p->multiplier + n0 + 4 * c, p->shift + n0 + 4 * c);
                for (int r = 0; r < mr; r++) {
                    const int8x8_t v0 = rqn_narrow(rqn_apply(acc[4 * r], q[0]), rqn_apply(acc[4 * r + 1], q[1]), zp, lo, hi);
                    const int8x8_t v1 = rqn_narrow(rqn_apply(acc[4 * r + 2], q[2]), rqn_apply(acc[4 * r + 3], q[3]), zp, lo, hi);
                    int8_t *dst = mv_c_row8(p, m0 + r) + n0;
                    if (nv == NR) {
                        vst1q_s8(dst, vcombine_s8(v0, v1));
                    } else {
                        int8_t tmp[16];
                        vst1q_s8(tmp, vcombine_s8(v0, v1));
                        memcpy(dst, tmp, nv);
                    }
                    if (p->lut) mv_apply_lut_at(dst, nv, p->lut, p->lut_stride, n0);
                }
            }
        }
    }
}

TD void mv_gemm_q8_neondot(const mv_gemm_args *p) { gemm_neondot(p, 0); }
TD void mv_gemm_i32_neondot(const mv_gemm_args *p) { gemm_neondot(p, 1); }

#else
void mv_gemm_q8_neondot(const mv_gemm_args *p) { (void)p; __builtin_trap(); }
void mv_gemm_i32_neondot(const mv_gemm_args *p) { (void)p; __builtin_trap(); }
#endif
