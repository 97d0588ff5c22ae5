// AVX2 exact integer Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (see mv_int8.h). Per
// block of MV_WINO_TILES 2x2-output tiles:
//   1. input transform V = B^T d B of each tile's 4x4 window, 16 channels per step as int16, into
//      16 panels (one per position p; row = tile, Cin values per row);
//   2. 16 GEMMs, the int16 K loop of gemm_avx2.c: M[tile][p][co] = sum_ci V[p][tile][ci] U[p][co][ci];
//   3. output transform A^T M A = 4 * acc, then acc + bias, requantisation, clamp and table exactly as
//      the GEMM's epilogue.
// 16 multiply-adds per 4 outputs instead of 36: 2.25 times fewer. Every step is exact integer
// arithmetic, so the result is the direct convolution's bit for bit.
#include "mv_int8_internal.h"

static size_t wino_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/// Bytes of the scratch's first part, the 16 int16 V panels (the int32 M block follows).
static size_t wino_v_bytes(size_t kp) { return wino_round_up(16 * MV_WINO_TILES * kp * sizeof(int16_t), 64); }

size_t mv_winograd3x3_scratch_bytes(size_t cin, size_t cout) {
    const size_t kp = wino_round_up(cin, 2), np = wino_round_up(cout, MV_AVX2_NR);
    return wino_v_bytes(kp) + wino_round_up(MV_WINO_TILES * 16 * np * sizeof(int32_t), 64);
}

#if defined(__x86_64__)
#include "mv_int8_avx2.h"

#define TB MV_WINO_TILES
#define MR MV_AVX2_MR
#define NR MV_AVX2_NR
_Static_assert(TB % MR == 0, "a block of tiles is whole row tiles of the K loop");

/// 16 channels of one pixel widened to int16; `valid` < 16 (the last channel group) reads only
/// those bytes and zero-fills the rest (their transformed values meet zero weights).
TAI __m256i wino_load16(const int8_t *px, size_t valid) {
    if (valid >= 16) return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)px));
    int8_t tmp[16] = {0};
    memcpy(tmp, px, valid);
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)tmp));
}

/// Input transform of tile (ty, tx), channels [c0, c0 + 16): V[p][row][c0 ...] for p = 4i + j.
TAI void wino_input_tile(const mv_wino_args *p, size_t ty, size_t tx, size_t c0, int16_t *v, size_t row, size_t kp) {
    const size_t valid = p->cin - c0 < 16 ? p->cin - c0 : 16;
    const __m256i vzp = _mm256_set1_epi16((int16_t)p->input_zero_point);
    const ptrdiff_t iy0 = (ptrdiff_t)(2 * ty) - 1, ix0 = (ptrdiff_t)(2 * tx) - 1;
    const int inside = iy0 >= 0 && iy0 + 4 <= (ptrdiff_t)p->in_h && ix0 >= 0 && ix0 + 4 <= (ptrdiff_t)p->in_w;
    __m256i d[4][4];
    for (int i = 0; i < 4; i++) {
        const ptrdiff_t iy = iy0 + i;
        for (int j = 0; j < 4; j++) {
            const ptrdiff_t ix = ix0 + j;
            if (inside || (iy >= 0 && iy < (ptrdiff_t)p->in_h && ix >= 0 && ix < (ptrdiff_t)p->in_w)) {
                d[i][j] = wino_load16(p->input + (iy * (ptrdiff_t)p->in_w + ix) * p->in_pixel_stride + (ptrdiff_t)c0, valid);
            } else {
                d[i][j] = vzp;
            }
        }
    }
    // t = B^T d (rows), then V = t B (columns); B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
    __m256i t[4][4];
    for (int j = 0; j < 4; j++) {
        t[0][j] = _mm256_sub_epi16(d[0][j], d[2][j]);
        t[1][j] = _mm256_add_epi16(d[1][j], d[2][j]);
        t[2][j] = _mm256_sub_epi16(d[2][j], d[1][j]);
        t[3][j] = _mm256_sub_epi16(d[1][j], d[3][j]);
    }
    const size_t width = kp - c0 < 16 ? kp - c0 : 16;  // int16 values of this group inside a row
    for (int i = 0; i < 4; i++) {
        __m256i r[4];
        r[0] = _mm256_sub_epi16(t[i][0], t[i][2]);
        r[1] = _mm256_add_epi16(t[i][1], t[i][2]);
        r[2] = _mm256_sub_epi16(t[i][2], t[i][1]);
        r[3] = _mm256_sub_epi16(t[i][1], t[i][3]);
        for (int j = 0; j < 4; j++) {
            int16_t *dst = v + ((size_t)(4 * i + j) * TB + row) * kp + c0;
            if (width == 16) {
                _mm256_storeu_si256((__m256i *)dst, r[j]);
            } else {
                int16_t tmp[16];
                _mm256_storeu_si256((__m256i *)tmp, r[j]);
                memcpy(dst, tmp, width * sizeof(int16_t));
            }
        }
    }
}

/// The four outputs of one tile for 8 channels from M rows m[p] (8 lanes each): A^T M A, with
/// A^T = [1 1 1 0; 0 1 -1 -1], divided by 4 (exact) plus bias. y[2a + b] is output (a, b).
TAI void wino_output8(const int32_t *m, size_t np, __m256i bias, __m256i *y) {
    __m256i s[2][4];
    for (int j = 0; j < 4; j++) {
        const __m256i m0 = _mm256_loadu_si256((const __m256i *)(m + (size_t)(0 + j) * np));
        const __m256i m1 = _mm256_loadu_si256((const __m256i *)(m + (size_t)(4 + j) * np));
        const __m256i m2 = _mm256_loadu_si256((const __m256i *)(m + (size_t)(8 + j) * np));
        const __m256i m3 = _mm256_loadu_si256((const __m256i *)(m + (size_t)(12 + j) * np));
        s[0][j] = _mm256_add_epi32(_mm256_add_epi32(m0, m1), m2);
        s[1][j] = _mm256_sub_epi32(_mm256_sub_epi32(m1, m2), m3);
    }
    for (int a = 0; a < 2; a++) {
        const __m256i y0 = _mm256_add_epi32(_mm256_add_epi32(s[a][0], s[a][1]), s[a][2]);
        const __m256i y1 = _mm256_sub_epi32(_mm256_sub_epi32(s[a][1], s[a][2]), s[a][3]);
        y[2 * a] = _mm256_add_epi32(_mm256_srai_epi32(y0, 2), bias);
        y[2 * a + 1] = _mm256_add_epi32(_mm256_srai_epi32(y1, 2), bias);
    }
}

/// Requantises two pixels' accumulators (16 channels each, lo/hi halves) and stores the valid ones.
TAI void wino_store_pair(const mv_wino_args *p, const __m256i *lo, const __m256i *hi, int8_t *const *dst, size_t n0,
                         size_t nv, const rq_consts *q0, const rq_consts *q1) {
    const __m256i zp = _mm256_set1_epi16((int16_t)p->output_zero_point);
    const __m256i cmin = _mm256_set1_epi8((int8_t)p->clamp_min), cmax = _mm256_set1_epi8((int8_t)p->clamp_max);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i w[2];
    for (int b = 0; b < 2; b++)
        w[b] = _mm256_adds_epi16(_mm256_packs_epi32(rq_apply(lo[b], q0), rq_apply(hi[b], q1)), zp);
    __m256i v = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w[0], w[1]), perm);
    v = _mm256_min_epi8(_mm256_max_epi8(v, cmin), cmax);
    for (int b = 0; b < 2; b++) {
        if (!dst[b]) continue;
        const __m128i codes = b ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
        if (nv == 16) {
            mv_store16_avx2(dst[b], codes, p->lut, p->lut_stride, n0);
        } else {
            int8_t tmp[16];
            _mm_storeu_si128((__m128i *)tmp, codes);
            memcpy(dst[b], tmp, nv);
            if (p->lut) mv_apply_lut_at(dst[b], nv, p->lut, p->lut_stride, n0);
        }
    }
}

TA void mv_winograd3x3_avx2(const mv_wino_args *p) {
    if (p->y0 >= p->y1) return;
    const size_t w = p->in_w, kp = p->kp, np = (p->cout + NR - 1) / NR * NR;
    int16_t *v = (int16_t *)p->scratch;
    int32_t *m = (int32_t *)((char *)p->scratch + wino_v_bytes(kp));
    const size_t tw = (w + 1) / 2, ty0 = p->y0 / 2, ty1 = (p->y1 - 1) / 2;
    const size_t tiles = (ty1 - ty0 + 1) * tw;
    for (size_t t0 = 0; t0 < tiles; t0 += TB) {
        const size_t nt = tiles - t0 < TB ? tiles - t0 : TB;
        // 1. Input transform; rows of the last row tile past nt are zeroed (the K loop reads them).
        for (size_t t = 0; t < nt; t++) {
            const size_t ty = ty0 + (t0 + t) / tw, tx = (t0 + t) % tw;
            for (size_t c0 = 0; c0 < p->cin; c0 += 16) wino_input_tile(p, ty, tx, c0, v, t, kp);
        }
        const size_t rows = (nt + MR - 1) / MR * MR;
        if (rows > nt)
            for (int q = 0; q < 16; q++) memset(v + ((size_t)q * TB + nt) * kp, 0, (rows - nt) * kp * sizeof(int16_t));
        // 2. One GEMM per position into M[tile][q][co] (no bias: it is added after the transform).
        for (int q = 0; q < 16; q++) {
            const int16_t *vq = v + (size_t)q * TB * kp;
            const int16_t *uq = p->packed + (size_t)q * np * kp;
            for (size_t r0 = 0; r0 < nt; r0 += MR) {
                const int mr = nt - r0 < MR ? (int)(nt - r0) : MR;
                for (size_t n0 = 0; n0 < p->cout; n0 += NR) {
                    const size_t nv = p->cout - n0 < NR ? p->cout - n0 : NR;
                    __m256i acc[2 * MR];
                    for (int i = 0; i < 2 * MR; i++) acc[i] = _mm256_setzero_si256();
                    kloop_block(acc, vq + r0 * kp, kp, uq + n0 * kp, kp / 2, nv);
                    for (int r = 0; r < mr; r++) {
                        int32_t *dst = m + ((r0 + (size_t)r) * 16 + (size_t)q) * np + n0;
                        _mm256_storeu_si256((__m256i *)dst, acc[2 * r]);
                        _mm256_storeu_si256((__m256i *)(dst + 8), acc[2 * r + 1]);
                    }
                }
            }
        }
        // 3. Output transform, requantisation and stores, 16 output channels at a time.
        for (size_t n0 = 0; n0 < p->cout; n0 += 16) {
            const size_t nv = p->cout - n0 < 16 ? p->cout - n0 : 16;
            const rq_consts q0 = rq_prepare(p->multiplier + n0, p->shift + n0);
            const rq_consts q1 = rq_prepare(p->multiplier + n0 + 8, p->shift + n0 + 8);
            const __m256i bias0 = _mm256_loadu_si256((const __m256i *)(p->bias + n0));
            const __m256i bias1 = _mm256_loadu_si256((const __m256i *)(p->bias + n0 + 8));
            for (size_t t = 0; t < nt; t++) {
                const size_t ty = ty0 + (t0 + t) / tw, tx = (t0 + t) % tw;
                const int32_t *mt = m + t * 16 * np + n0;
                __m256i ylo[4], yhi[4];
                wino_output8(mt, np, bias0, ylo);
                wino_output8(mt + 8, np, bias1, yhi);
                for (int a = 0; a < 2; a++) {
                    const size_t oy = 2 * ty + (size_t)a;
                    if (oy < p->y0 || oy >= p->y1) continue;
                    int8_t *dst[2];
                    for (int b = 0; b < 2; b++) {
                        const size_t ox = 2 * tx + (size_t)b;
                        dst[b] = ox < w ? p->out + (ptrdiff_t)(oy * w + ox) * p->out_pixel_stride + (ptrdiff_t)n0 : NULL;
                    }
                    wino_store_pair(p, ylo + 2 * a, yhi + 2 * a, dst, n0, nv, &q0, &q1);
                }
            }
        }
    }
}

#else
void mv_winograd3x3_avx2(const mv_wino_args *p) { (void)p; __builtin_trap(); }
#endif
