// NEON requantisation helpers shared by gemm_neon.c, gemm_neondot.c and dwconv_neon.c (AArch64).
// vqshl (saturating left shift), vqrdmulh (rounding doubling high multiply: (x*m + 2^30) >> 31 for
// m >= 0) and vrshl by a negative amount (rounding right shift, exact for any amount) are exactly
// the reference semantics.
#ifndef MV_INT8_NEON_H
#define MV_INT8_NEON_H
#include <arm_neon.h>
#include <stdint.h>

typedef struct { int32x4_t mult, lsh, rsh; } rqn_consts;

static inline rqn_consts rqn_prepare(const int32_t *mult, const int32_t *shift) {
    rqn_consts q;
    const int32x4_t s = vld1q_s32(shift), zero = vdupq_n_s32(0);
    q.mult = vld1q_s32(mult);
    q.lsh = vmaxq_s32(vnegq_s32(s), zero);   // left shift amount (>= 0)
    q.rsh = vnegq_s32(vmaxq_s32(s, zero));   // negative = rounding right shift
    return q;
}

static inline int32x4_t rqn_apply(int32x4_t acc, rqn_consts q) {
    return vrshlq_s32(vqrdmulhq_s32(vqshlq_s32(acc, q.lsh), q.mult), q.rsh);
}

/// Two requantised vectors (8 channels) -> int8 with zero point and clamp.
static inline int8x8_t rqn_narrow(int32x4_t z0, int32x4_t z1, int16x8_t zp, int8x8_t lo, int8x8_t hi) {
    const int16x8_t w = vqaddq_s16(vcombine_s16(vqmovn_s32(z0), vqmovn_s32(z1)), zp);
    return vmin_s8(vmax_s8(vqmovn_s16(w), lo), hi);
}
#endif
