// Helpers shared by the int8 kernel files (not part of the public header).
#ifndef MV_INT8_INTERNAL_H
#define MV_INT8_INTERNAL_H
#include "mv_int8.h"
#include <string.h>

/// The portable packing loops of mv_pack_b_int8 and mv_pack_b_int16_avx2 for columns [c0, n)
/// (int16 elements when `wide`: the element width of the layout, not a choice of ISA).
int mv_pack_b_columns(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                      size_t nr, size_t kr, size_t kp, int wide, size_t c0, void *dst, int32_t *sums);

static inline const int8_t *mv_a_row(const mv_gemm_args *p, size_t m) {
    return p->a + (p->a_offsets ? (ptrdiff_t)p->a_offsets[m] : (ptrdiff_t)m * p->a_stride);
}

static inline int8_t *mv_c_row8(const mv_gemm_args *p, size_t m) {
    return (int8_t *)p->c + (p->c_offsets ? (ptrdiff_t)p->c_offsets[m] : (ptrdiff_t)m * p->c_stride);
}

static inline int32_t *mv_c_row32(const mv_gemm_args *p, size_t m) {
    return (int32_t *)p->c + (p->c_offsets ? (ptrdiff_t)p->c_offsets[m] : (ptrdiff_t)m * p->c_stride);
}

/// -b_zero_point * sum_k a[k] (wrapping int32 arithmetic, exact for the guaranteed ranges).
static inline int32_t mv_row_correction(const int8_t *a, size_t k, int32_t b_zero_point) {
    int32_t s = 0;
    for (size_t i = 0; i < k; i++) s += a[i];
    return (int32_t)((uint32_t)0 - (uint32_t)s * (uint32_t)b_zero_point);
}

/// Scalar requantisation (same semantics as Requantization.swift), for tails and tests.
static inline int32_t mv_requantize_scalar(int32_t acc, int32_t mult, int32_t shift) {
    int32_t x = acc;
    if (shift < 0) {
        int64_t w = (int64_t)acc * ((int64_t)1 << -shift);
        x = w > INT32_MAX ? INT32_MAX : (w < INT32_MIN ? INT32_MIN : (int32_t)w);
    }
    int32_t y = (int32_t)(((int64_t)x * mult + ((int64_t)1 << 30)) >> 31);
    if (shift > 0) {
        int s1 = shift > 31 ? 31 : shift, s2 = shift - 1 > 31 ? 31 : shift - 1;
        return (y >> s1) + ((y >> s2) & 1);
    }
    return y;
}

static inline void mv_apply_lut(int8_t *c, size_t n, const int8_t *lut) {
    for (size_t j = 0; j < n; j++) c[j] = lut[(int)c[j] + 128];
}

/// The activation table(s) for columns [col0, col0 + n): one shared table (stride 0) or one per
/// column (stride 256: per-channel quantised outputs).
static inline void mv_apply_lut_at(int8_t *c, size_t n, const int8_t *lut, size_t stride, size_t col0) {
    if (stride == 0) {
        mv_apply_lut(c, n, lut);
        return;
    }
    const int8_t *t = lut + col0 * stride;
    for (size_t j = 0; j < n; j++, t += stride) c[j] = t[(int)c[j] + 128];
}

/// Table lookups of 8 codes held in a 64-bit word: c[j] = t[j * stride + code_j + 128] (stride 0
/// or 256, a constant after inlining). The codes are offset to unsigned (code + 128 = code ^ 0x80)
/// and taken apart with shifts, so with each column's table at a constant offset a lookup is one
/// table load and one byte store (no per-element code load, no table-pointer chain).
__attribute__((always_inline)) static inline void mv_apply_lut8_word(int8_t *c, uint64_t codes, const int8_t *t, size_t stride) {
    const uint64_t u = codes ^ 0x8080808080808080ull;
    c[0] = t[0 * stride + (uint8_t)u];
    c[1] = t[1 * stride + (uint8_t)(u >> 8)];
    c[2] = t[2 * stride + (uint8_t)(u >> 16)];
    c[3] = t[3 * stride + (uint8_t)(u >> 24)];
    c[4] = t[4 * stride + (uint8_t)(u >> 32)];
    c[5] = t[5 * stride + (uint8_t)(u >> 40)];
    c[6] = t[6 * stride + (uint8_t)(u >> 48)];
    c[7] = t[7 * stride + (uint8_t)(u >> 56)];
}

/// The 9 tap pointers of output pixel (y, x) of a 3x3 depthwise convolution with dilation d and
/// padding d: tap (dy, dx) reads input (y·stride + (dy − 1)·d, x·stride + (dx − 1)·d), or `pad`
/// where that falls outside the image.
static inline void mv_dw_taps(const mv_dw_args *p, size_t y, size_t x, const int8_t **t) {
    const ptrdiff_t d = p->dilation;
    for (int dy = 0; dy < 3; dy++) {
        const ptrdiff_t iy = (ptrdiff_t)y * p->stride + (dy - 1) * d;
        const int rowok = iy >= 0 && iy < (ptrdiff_t)p->in_h;
        for (int dx = 0; dx < 3; dx++) {
            const ptrdiff_t ix = (ptrdiff_t)x * p->stride + (dx - 1) * d;
            t[dy * 3 + dx] = rowok && ix >= 0 && ix < (ptrdiff_t)p->in_w
                ? p->input + iy * p->in_row_stride + ix * p->in_pixel_stride : p->pad;
        }
    }
}

/// Tap pointers of output pixels [x0, x0 + count) of row y into t[(x - x0) * 9 + tap]. The pixels
/// whose whole window is inside the image, a run [inner_lo, inner_hi) of the row, take the fast
/// path: one base pointer advancing by `stride` pixels, plus multiples of the row and pixel steps
/// times d; the others check every tap. (Bounding the run once, rather than testing each pixel,
/// also more than pays for the dilation: 2% fewer instructions in a whole undilated AVX2
/// depthwise convolution than the per-pixel test without dilation, by cachegrind.)
static inline void mv_dw_row_taps(const mv_dw_args *p, size_t y, size_t x0, size_t count, const int8_t **t) {
    const ptrdiff_t s = p->stride, d = p->dilation, w = (ptrdiff_t)p->in_w;
    const ptrdiff_t row_step = d * p->in_row_stride, pixel_step = d * p->in_pixel_stride;
    const ptrdiff_t iy0 = (ptrdiff_t)y * s - d;
    const ptrdiff_t first = (ptrdiff_t)x0, end = first + (ptrdiff_t)count;
    // Inside horizontally: x·s − d >= 0 and x·s + d <= w − 1.
    ptrdiff_t inner_lo = (d + s - 1) / s, inner_hi = w - 1 - d >= 0 ? (w - 1 - d) / s + 1 : 0;
    if (inner_lo < first) inner_lo = first;
    if (inner_hi > end) inner_hi = end;
    if (iy0 < 0 || iy0 + 2 * d >= (ptrdiff_t)p->in_h || inner_hi <= inner_lo) inner_lo = inner_hi = end;
    const int8_t **tap = t;
    for (ptrdiff_t x = first; x < inner_lo; x++, tap += 9) mv_dw_taps(p, y, (size_t)x, tap);
    if (inner_lo < inner_hi) {  // (forming `base` outside the image would be undefined)
        const int8_t *base = p->input + iy0 * p->in_row_stride + (inner_lo * s - d) * p->in_pixel_stride;
        const ptrdiff_t advance = s * p->in_pixel_stride;
        for (ptrdiff_t x = inner_lo; x < inner_hi; x++, tap += 9, base += advance)
            for (int dy = 0; dy < 3; dy++)
                for (int dx = 0; dx < 3; dx++) tap[dy * 3 + dx] = base + dy * row_step + dx * pixel_step;
    }
    for (ptrdiff_t x = inner_hi; x < end; x++, tap += 9) mv_dw_taps(p, y, (size_t)x, tap);
}

#endif
