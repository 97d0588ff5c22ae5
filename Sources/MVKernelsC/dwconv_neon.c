// NEON depthwise 3x3 (NHWC): 16 channels at a time; two taps are multiplied and summed in int16
// (`smull` + `smlal`, exact since weights lie in [-127, 127]) and widened into int32 (`saddw`).
#include "mv_int8_internal.h"

#if defined(__aarch64__)
#include "mv_int8_neon.h"

#define XCHUNK 64  // output pixels per tap-pointer batch

static inline int8x16_t dw16(const int8x16_t *in, const int8_t *w, const int32x4_t *bias, const rqn_consts *q,
                             int16x8_t zp, int8x8_t lo, int8x8_t hi) {
    int32x4_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    for (int j = 0; j < 9; j += 2) {
        const int8x16_t w0 = vld1q_s8(w + 16 * j);
        int16x8_t pl = vmull_s8(vget_low_s8(in[j]), vget_low_s8(w0));
        int16x8_t ph = vmull_high_s8(in[j], w0);
        if (j + 1 < 9) {
            const int8x16_t w1 = vld1q_s8(w + 16 * (j + 1));
            pl = vmlal_s8(pl, vget_low_s8(in[j + 1]), vget_low_s8(w1));
            ph = vmlal_high_s8(ph, in[j + 1], w1);
        }
        a0 = vaddw_s16(a0, vget_low_s16(pl));
        a1 = vaddw_high_s16(a1, pl);
        a2 = vaddw_s16(a2, vget_low_s16(ph));
        a3 = vaddw_high_s16(a3, ph);
    }
    const int8x8_t v0 = rqn_narrow(rqn_apply(a0, q[0]), rqn_apply(a1, q[1]), zp, lo, hi);
    const int8x8_t v1 = rqn_narrow(rqn_apply(a2, q[2]), rqn_apply(a3, q[3]), zp, lo, hi);
    return vcombine_s8(v0, v1);
}

void mv_dw3x3_neon(const mv_dw_args *p) {
    const size_t C = p->channels, groups = (C + 15) / 16;
    const int8_t *packed = (const int8_t *)p->packed;
    const int16x8_t zp = vdupq_n_s16((int16_t)p->output_zero_point);
    const int8x8_t lo = vdup_n_s8((int8_t)p->clamp_min), hi = vdup_n_s8((int8_t)p->clamp_max);
    const int8_t *taps[XCHUNK * 9];
    for (size_t y = p->y0; y < p->y1; y++) {
        int8_t *orow = p->out + (ptrdiff_t)y * p->out_row_stride;
        for (size_t x0 = 0; x0 < p->out_w; x0 += XCHUNK) {
            const size_t nx = p->out_w - x0 < XCHUNK ? p->out_w - x0 : XCHUNK;
            mv_dw_row_taps(p, y, x0, nx, taps);
            for (size_t g = 0; g < groups; g++) {
                const size_t c0 = g * 16, nv = C - c0 < 16 ? C - c0 : 16;
                const int8_t *w = packed + g * 144;
                int32x4_t bias[4];
                rqn_consts q[4];
                for (int i = 0; i < 4; i++) {
                    bias[i] = vld1q_s32(p->bias + c0 + 4 * i);
                    q[i] = rqn_prepare(p->multiplier + c0 + 4 * i, p->shift + c0 + 4 * i);
                }
                int8_t *o = orow + (ptrdiff_t)x0 * p->out_pixel_stride + c0;
                for (size_t i = 0; i < nx; i++, o += p->out_pixel_stride) {
                    const int8_t *const *t = taps + i * 9;
                    int8x16_t in[9];
                    if (nv == 16) {
                        for (int j = 0; j < 9; j++) in[j] = vld1q_s8(t[j] + c0);
                        vst1q_s8(o, dw16(in, w, bias, q, zp, lo, hi));
                    } else {
                        for (int j = 0; j < 9; j++) {
                            int8_t tmp[16] = {0};
                            memcpy(tmp, t[j] + c0, nv);
                            in[j] = vld1q_s8(tmp);
                        }
                        int8_t tmp[16];
                        vst1q_s8(tmp, dw16(in, w, bias, q, zp, lo, hi));
                        memcpy(o, tmp, nv);
                    }
                    if (p->lut) mv_apply_lut_at(o, nv, p->lut, p->lut_stride, c0);
                }
            }
        }
    }
}

#else
void mv_dw3x3_neon(const mv_dw_args *p) { (void)p; __builtin_trap(); }
#endif
