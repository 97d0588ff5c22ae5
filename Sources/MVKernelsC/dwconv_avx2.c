// AVX2 depthwise 3x3 (NHWC): 16 channels at a time; pairs of taps are interleaved as int16 and
// multiplied-accumulated with `vpmaddwd` into int32, then requantised exactly as the reference.
// Loop order per output row: channel group outside, pixels inside (requantisation constants and
// weights stay hot), with the row's tap pointers computed once.
#include "mv_int8_internal.h"

#if defined(__x86_64__)
#include "mv_int8_avx2.h"

#define XCHUNK 64  // output pixels per tap-pointer batch

/// One pixel, 16 channels starting at c0 of each tap; returns the clamped int8 outputs.
TAI __m128i dw16(const int8_t *const *t, size_t c0, const int16_t *w, __m256i acc_lo, __m256i acc_hi,
                 const rq_consts *q0, const rq_consts *q1, __m256i zp, __m128i lo, __m128i hi) {
    for (int j = 0; j < 5; j++) {
        const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(t[2 * j] + c0)));
        const __m256i b = j < 4 ? _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(t[2 * j + 1] + c0)))
                                : _mm256_setzero_si256();
        acc_lo = _mm256_add_epi32(acc_lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b),
                                                            _mm256_loadu_si256((const __m256i *)(w + 32 * j))));
        acc_hi = _mm256_add_epi32(acc_hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b),
                                                            _mm256_loadu_si256((const __m256i *)(w + 32 * j + 16))));
    }
    const __m256i v = _mm256_adds_epi16(_mm256_packs_epi32(rq_apply(acc_lo, q0), rq_apply(acc_hi, q1)), zp);
    const __m128i b8 = _mm_packs_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_min_epi8(_mm_max_epi8(b8, lo), hi);
}

TA void mv_dw3x3_avx2(const mv_dw_args *p) {
    const size_t C = p->channels, groups = (C + 15) / 16;
    const int16_t *packed = (const int16_t *)p->packed;
    const __m256i zp = _mm256_set1_epi16((int16_t)p->output_zero_point);
    const __m128i lo = _mm_set1_epi8((int8_t)p->clamp_min), hi = _mm_set1_epi8((int8_t)p->clamp_max);
    const int8_t *taps[XCHUNK * 9];
    int8_t block[XCHUNK * 16] __attribute__((aligned(64)));  // for p->lut_block
    for (size_t y = p->y0; y < p->y1; y++) {
        int8_t *orow = p->out + (ptrdiff_t)y * p->out_row_stride;
        for (size_t x0 = 0; x0 < p->out_w; x0 += XCHUNK) {
            const size_t nx = p->out_w - x0 < XCHUNK ? p->out_w - x0 : XCHUNK;
            mv_dw_row_taps(p, y, x0, nx, taps);
            for (size_t g = 0; g < groups; g++) {
                const size_t c0 = g * 16, nv = C - c0 < 16 ? C - c0 : 16;
                const int16_t *w = packed + g * 160;
                const __m256i bias_lo = _mm256_loadu_si256((const __m256i *)(p->bias + c0));
                const __m256i bias_hi = _mm256_loadu_si256((const __m256i *)(p->bias + c0 + 8));
                const rq_consts q0 = rq_prepare(p->multiplier + c0, p->shift + c0);
                const rq_consts q1 = rq_prepare(p->multiplier + c0 + 8, p->shift + c0 + 8);
                int8_t *o = orow + (ptrdiff_t)x0 * p->out_pixel_stride + c0;
                if (nv == 16) {
                    // With p->lut_block the codes go to `block` and its tables are applied to the
                    // whole block (XCHUNK = 64 pixels), then copied out.
                    const int blocked = p->lut && p->lut_stride && p->lut_block;
                    int8_t *const out0 = o;
                    const ptrdiff_t ops = p->out_pixel_stride;
                    if (blocked) o = block;
                    const int8_t *const lut = blocked ? NULL : p->lut;
                    size_t i = 0;
                    // Four (then two) pixels per step: their chains (tap loads, madds,
                    // requantisation, table lookups) are independent and overlap, where one pixel
                    // at a time mostly waits on its own chain. Written out: the loop form over an
                    // array of results compiles to slower code.
                    const ptrdiff_t ps = blocked ? 16 : ops;
                    for (; i + 4 <= nx; i += 4, o += 4 * ps) {
                        const __m128i r0 = dw16(taps + i * 9, c0, w, bias_lo, bias_hi, &q0, &q1, zp, lo, hi);
                        const __m128i r1 = dw16(taps + (i + 1) * 9, c0, w, bias_lo, bias_hi, &q0, &q1, zp, lo, hi);
                        const __m128i r2 = dw16(taps + (i + 2) * 9, c0, w, bias_lo, bias_hi, &q0, &q1, zp, lo, hi);
                        const __m128i r3 = dw16(taps + (i + 3) * 9, c0, w, bias_lo, bias_hi, &q0, &q1, zp, lo, hi);
                        mv_store16_avx2(o, r0, lut, p->lut_stride, c0);
                        mv_store16_avx2(o + ps, r1, lut, p->lut_stride, c0);
                        mv_store16_avx2(o + 2 * ps, r2, lut, p->lut_stride, c0);
                        mv_store16_avx2(o + 3 * ps, r3, lut, p->lut_stride, c0);
                    }
                    for (; i + 2 <= nx; i += 2, o += 2 * ps) {
                        const __m128i r0 = dw16(taps + i * 9, c0, w, bias_lo, bias_hi, &q0, &q1, zp, lo, hi);
                        const __m128i r1 = dw16(taps + (i + 1) * 9, c0, w, bias_lo, bias_hi, &q0, &q1, zp, lo, hi);
                        mv_store16_avx2(o, r0, lut, p->lut_stride, c0);
                        mv_store16_avx2(o + ps, r1, lut, p->lut_stride, c0);
                    }
                    if (i < nx) {
                        const __m128i r = dw16(taps + i * 9, c0, w, bias_lo, bias_hi, &q0, &q1, zp, lo, hi);
                        mv_store16_avx2(o, r, lut, p->lut_stride, c0);
                    }
                    if (blocked) {
                        p->lut_block(block, p->lut + c0 * 256);
                        for (size_t j = 0; j < nx; j++)
                            _mm_storeu_si128((__m128i *)(out0 + (ptrdiff_t)j * ops), _mm_load_si128((const __m128i *)(block + 16 * j)));
                    }
                } else {
                    for (size_t i = 0; i < nx; i++, o += p->out_pixel_stride) {
                        int8_t tail[9][16];
                        const int8_t *tp[9];
                        for (int j = 0; j < 9; j++) {
                            memset(tail[j], 0, 16);
                            memcpy(tail[j], taps[i * 9 + j] + c0, nv);
                            tp[j] = tail[j];
                        }
                        int8_t tmp[16];
                        _mm_storeu_si128((__m128i *)tmp, dw16(tp, 0, w, bias_lo, bias_hi, &q0, &q1, zp, lo, hi));
                        memcpy(o, tmp, nv);
                        if (p->lut) mv_apply_lut_at(o, nv, p->lut, p->lut_stride, c0);
                    }
                }
            }
        }
    }
}

#else
void mv_dw3x3_avx2(const mv_dw_args *p) { (void)p; __builtin_trap(); }
#endif
