// AVX2 int8 GEMM: 6x16 tiles, weights pre-widened to int16 and packed in k-pairs (KR = 2), each
// A row widened once per row tile into an int16 panel on the stack; one `vpbroadcastd` of an A
// pair feeds two `vpmaddwd` (16 columns). Exact int32 accumulation, fixed-point requantisation
// identical to the reference (see mv_int8.h).
#include "mv_int8_internal.h"

#if defined(__x86_64__)
#include "mv_int8_avx2.h"

#define MR MV_AVX2_MR
#define NR MV_AVX2_NR
#define KMAX 2048  // int16 elements per row of the A panel (stack: MR * KMAX * 2 bytes = 24 KiB)

/// Widens rows[r][k0 ..< k0 + kc] (zero beyond k) into panel[r * kc ...] as int16.
TAI void widen_rows(int16_t *panel, const int8_t *const *rows, size_t k0, size_t kc, size_t k) {
    size_t valid = k - k0 < kc ? k - k0 : kc;
    for (int r = 0; r < MR; r++) {
        const int8_t *src = rows[r] + k0;
        int16_t *dst = panel + (size_t)r * kc;
        size_t i = 0;
        for (; i + 16 <= valid; i += 16)
            _mm256_storeu_si256((__m256i *)(dst + i), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src + i))));
        if (i < valid && valid >= 16) {
            // Last (overlapping) 16 elements ending exactly at `valid`.
            i = valid - 16;
            _mm256_storeu_si256((__m256i *)(dst + i), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src + i))));
            i = valid;
        }
        for (; i < valid; i++) dst[i] = src[i];
        for (; i < kc; i++) dst[i] = 0;
    }
}

/// Requantises the 6x16 tile and stores rows [0, mr) columns [0, nv) at crow[r] + n0.
TAI void store_q8(const __m256i *acc, const mv_gemm_args *p, size_t n0, int8_t *const *crow, int mr, size_t nv) {
    const rq_consts q0 = rq_prepare(p->multiplier + n0, p->shift + n0);
    const rq_consts q1 = rq_prepare(p->multiplier + n0 + 8, p->shift + n0 + 8);
    const __m256i zp = _mm256_set1_epi16((int16_t)p->output_zero_point);
    const __m256i lo = _mm256_set1_epi8((int8_t)p->clamp_min), hi = _mm256_set1_epi8((int8_t)p->clamp_max);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i w[MR];
    for (int r = 0; r < MR; r++) {
        const __m256i z0 = rq_apply(acc[2 * r], &q0), z1 = rq_apply(acc[2 * r + 1], &q1);
        w[r] = _mm256_adds_epi16(_mm256_packs_epi32(z0, z1), zp);
    }
    for (int r = 0; r < MR; r += 2) {
        __m256i v = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w[r], w[r + 1]), perm);
        v = _mm256_min_epi8(_mm256_max_epi8(v, lo), hi);
        for (int h = 0; h < 2; h++) {
            if (r + h >= mr) break;
            int8_t *dst = crow[r + h] + n0;
            const __m128i half = h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
            if (nv == NR) {
                mv_store16_avx2(dst, half, p->lut, p->lut_stride, n0);
            } else {
                int8_t tmp[16];
                _mm_storeu_si128((__m128i *)tmp, half);
                memcpy(dst, tmp, nv);
                if (p->lut) mv_apply_lut_at(dst, nv, p->lut, p->lut_stride, n0);
            }
        }
    }
}

TAI void store_i32(const __m256i *acc, size_t n0, int32_t *const *crow, int mr, size_t nv) {
    for (int r = 0; r < mr; r++) {
        int32_t *dst = crow[r] + n0;
        if (nv == NR) {
            _mm256_storeu_si256((__m256i *)dst, acc[2 * r]);
            _mm256_storeu_si256((__m256i *)(dst + 8), acc[2 * r + 1]);
        } else {
            int32_t tmp[16];
            _mm256_storeu_si256((__m256i *)tmp, acc[2 * r]);
            _mm256_storeu_si256((__m256i *)(tmp + 8), acc[2 * r + 1]);
            memcpy(dst, tmp, nv * 4);
        }
    }
}

TAI void gemm_avx2(const mv_gemm_args *p, int int32_out) {
    const size_t k = p->k, n = p->n, kp = (k + 1) & ~(size_t)1;
    const int single = kp <= KMAX;
    const int16_t *packed = (const int16_t *)p->packed;
    int16_t panel[MR * KMAX] __attribute__((aligned(32)));
    // Row addresses: the common strided case without per-row table lookups or branches (the
    // per-row-tile setup is a large share of the small-K layers' time).
    const int strided = !p->a_offsets && !p->c_offsets;
    const size_t csize = int32_out ? 4 : 1;
    for (size_t m0 = 0; m0 < p->m; m0 += MR) {
        const int mr = p->m - m0 < MR ? (int)(p->m - m0) : MR;
        const int8_t *arow[MR];
        void *crow[MR];
        if (strided) {
            const int8_t *a0 = p->a + (ptrdiff_t)m0 * p->a_stride;
            char *c0 = (char *)p->c + (ptrdiff_t)m0 * p->c_stride * (ptrdiff_t)csize;
            for (int r = 0; r < MR; r++) {
                arow[r] = a0 + (r < mr ? r : 0) * p->a_stride;
                crow[r] = r < mr ? c0 + r * p->c_stride * (ptrdiff_t)csize : NULL;
            }
        } else {
            for (int r = 0; r < MR; r++) {
                arow[r] = mv_a_row(p, m0 + (r < mr ? r : 0));
                crow[r] = r < mr ? (int32_out ? (void *)mv_c_row32(p, m0 + r) : (void *)mv_c_row8(p, m0 + r)) : NULL;
            }
        }
        __m256i roff[MR];
        if (p->b_zero_point)
            for (int r = 0; r < MR; r++) roff[r] = _mm256_set1_epi32(mv_row_correction(arow[r], k, p->b_zero_point));
        if (single) widen_rows(panel, arow, 0, kp, k);
        for (size_t n0 = 0; n0 < n; n0 += NR) {
            const size_t nv = n - n0 < NR ? n - n0 : NR;
            const int16_t *b = packed + n0 * kp;
            const __m256i bias0 = _mm256_loadu_si256((const __m256i *)(p->bias + n0));
            const __m256i bias1 = _mm256_loadu_si256((const __m256i *)(p->bias + n0 + 8));
            __m256i acc[2 * MR];
            for (int r = 0; r < MR; r++) {
                acc[2 * r] = p->b_zero_point ? _mm256_add_epi32(bias0, roff[r]) : bias0;
                acc[2 * r + 1] = p->b_zero_point ? _mm256_add_epi32(bias1, roff[r]) : bias1;
            }
            if (single) {
                kloop_block(acc, panel, kp, b, kp / 2, nv);
            } else {
                for (size_t k0 = 0; k0 < kp; k0 += KMAX) {
                    const size_t kc = kp - k0 < KMAX ? kp - k0 : KMAX;
                    widen_rows(panel, arow, k0, kc, k);
                    kloop_block(acc, panel, kc, b + k0 * NR, kc / 2, nv);
                }
            }
            if (int32_out) store_i32(acc, n0, (int32_t *const *)crow, mr, nv);
            else store_q8(acc, p, n0, (int8_t *const *)crow, mr, nv);
        }
    }
}

TA void mv_gemm_q8_avx2(const mv_gemm_args *p) { gemm_avx2(p, 0); }
TA void mv_gemm_i32_avx2(const mv_gemm_args *p) { gemm_avx2(p, 1); }

#else
void mv_gemm_q8_avx2(const mv_gemm_args *p) { (void)p; __builtin_trap(); }
void mv_gemm_i32_avx2(const mv_gemm_args *p) { (void)p; __builtin_trap(); }
#endif
