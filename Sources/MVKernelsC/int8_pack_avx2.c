// AVX2 packing of B into the AVX2 GEMM layout (int16, NR = 16, KR = 2) and the AVX-512 VNNI layout
// (int8, NR = 16, KR = 4), for the operands attention repacks per head at run time (K for QK^T, V
// for P.V). Same output, sums and -128 flag as the portable loops in int8_pack.c, which pack the
// column tails here. x86-64; stubs that trap elsewhere (the rule of mv_int8.h).
#include "mv_int8_internal.h"

#if defined(__x86_64__)
#include "mv_int8_avx2.h"

/// The 32-byte chunk src[0 ..< cnt] (1 <= cnt <= 32) with zeros after it, reading no byte outside
/// the run. Runs of 16 or more bytes (every attention head size of MobileViT: K = 16 ... 60) are
/// two loads and a byte shuffle; a `memcpy` of a variable count into a zeroed stack buffer, as
/// before, cost about a call per column, most of the K repack of the attention blocks.
TA static inline __m256i load_chunk32(const int8_t *src, size_t cnt) {
    if (cnt == 32) return _mm256_loadu_si256((const __m256i *)src);
    if (cnt >= 16) {
        // Bytes [16, cnt): the 16 bytes ending at cnt, moved down by 32 - cnt with zeros above.
        // window[16 - j + i] is i + 16 - j for i < j = cnt - 16, else 0x80 (pshufb writes 0).
        static const int8_t window[32] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                          -128, -128, -128, -128, -128, -128, -128, -128,
                                          -128, -128, -128, -128, -128, -128, -128, -128};
        const size_t j = cnt - 16;
        const __m128i tail = _mm_loadu_si128((const __m128i *)(src + cnt - 16));
        const __m128i hi = _mm_shuffle_epi8(tail, _mm_loadu_si128((const __m128i *)(window + 16 - j)));
        return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)src)), hi, 1);
    }
    int8_t chunk[32] __attribute__((aligned(32))) = {0};
    memcpy(chunk, src, cnt);
    return _mm256_load_si256((const __m256i *)chunk);
}

/// Row-major source (k_stride 1): columns [0, nfull) in whole blocks of 16. Each column's K values
/// are widened once into a dword-per-pair row, then its pairs are copied to their slots (stride 16
/// dwords), so no int16 element is written on its own. Returns 1 when an element is -128.
TA static int pack_rows_wide16(const int8_t *src, ptrdiff_t n_stride, size_t nfull, size_t k, size_t kp,
                               int16_t *dst, int32_t *sums) {
    const __m256i ones = _mm256_set1_epi16(1), minus128 = _mm256_set1_epi8(-128);
    __m256i seen = _mm256_setzero_si256();
    int32_t pairs[64] __attribute__((aligned(32)));  // one 32-element chunk of a column, as 16 pairs
    for (size_t c = 0; c < nfull; c++) {
        const int8_t *s = src + (ptrdiff_t)c * n_stride;
        int16_t *d = dst + (c / 16) * kp * 16 + (c % 16) * 2;  // kpair i of this column at d + 32 i
        __m256i vsum = _mm256_setzero_si256();
        for (size_t k0 = 0; k0 < k; k0 += 32) {
            const size_t cnt = k - k0 < 32 ? k - k0 : 32;
            const __m256i v = load_chunk32(s + k0, cnt);
            seen = _mm256_or_si256(seen, _mm256_cmpeq_epi8(v, minus128));
            const __m256i lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v));
            const __m256i hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1));
            vsum = _mm256_add_epi32(vsum, _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_madd_epi16(hi, ones)));
            _mm256_store_si256((__m256i *)pairs, lo);
            _mm256_store_si256((__m256i *)(pairs + 8), hi);
            // Zero padding past k (within kp) comes from the zeroed chunk; dst is zeroed beyond kp.
            const size_t np = (cnt + 1) / 2;
            for (size_t i = 0; i < np; i++) memcpy(d + (k0 / 2 + i) * 32, &pairs[i], 4);
        }
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(vsum), _mm256_extracti128_si256(vsum, 1));
        s4 = _mm_hadd_epi32(s4, s4);
        s4 = _mm_hadd_epi32(s4, s4);
        sums[c] = _mm_cvtsi128_si32(s4);
    }
    return !_mm256_testz_si256(seen, seen);
}

/// Column-major source (n_stride 1): blocks [0, nfull / 16) of 16 columns. Source rows 2i and
/// 2i + 1 widened and interleaved are exactly kpair i of the block.
TA static int pack_columns_wide16(const int8_t *src, ptrdiff_t k_stride, size_t nfull, size_t k, size_t kp,
                                  int16_t *dst, int32_t *sums) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m128i minus128 = _mm_set1_epi8(-128);
    __m128i seen = _mm_setzero_si128();
    for (size_t n0 = 0; n0 < nfull; n0 += 16) {
        int16_t *d = dst + n0 * kp;
        __m256i sum_a = _mm256_setzero_si256(), sum_b = _mm256_setzero_si256();
        for (size_t kk = 0; kk < k; kk += 2) {
            const __m128i r0 = _mm_loadu_si128((const __m128i *)(src + (ptrdiff_t)kk * k_stride + n0));
            const __m128i r1 = kk + 1 < k ? _mm_loadu_si128((const __m128i *)(src + (ptrdiff_t)(kk + 1) * k_stride + n0))
                                          : _mm_setzero_si128();
            seen = _mm_or_si128(seen, _mm_or_si128(_mm_cmpeq_epi8(r0, minus128), _mm_cmpeq_epi8(r1, minus128)));
            const __m256i a = _mm256_cvtepi8_epi16(r0), b = _mm256_cvtepi8_epi16(r1);
            // unpack works per 128-bit lane: lo = columns 0-3 | 8-11, hi = 4-7 | 12-15.
            const __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);
            _mm256_storeu_si256((__m256i *)(d + kk * 16), _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(d + kk * 16 + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
            sum_a = _mm256_add_epi32(sum_a, _mm256_madd_epi16(lo, ones));
            sum_b = _mm256_add_epi32(sum_b, _mm256_madd_epi16(hi, ones));
        }
        _mm256_storeu_si256((__m256i *)(sums + n0), _mm256_permute2x128_si256(sum_a, sum_b, 0x20));
        _mm256_storeu_si256((__m256i *)(sums + n0 + 8), _mm256_permute2x128_si256(sum_a, sum_b, 0x31));
    }
    return !_mm_testz_si128(seen, seen);
}

/// Whole blocks of 16 columns: packs columns [0, *done) (a multiple of 16, possibly 0) with their
/// sums; returns 1 when one of them is -128.
static int pack_wide16(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                       size_t kp, int16_t *dst, int32_t *sums, size_t *done) {
    const size_t nfull = n / 16 * 16;
    *done = 0;
    if (nfull == 0) return 0;
    if (k_stride == 1) {
        *done = nfull;
        return pack_rows_wide16(src, n_stride, nfull, k, kp, dst, sums);
    }
    if (n_stride == 1) {
        *done = nfull;
        return pack_columns_wide16(src, k_stride, nfull, k, kp, dst, sums);
    }
    return 0;
}

int mv_pack_b_int16_avx2(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                         size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums) {
    size_t done = 0;
    int has_min = 0;
    if (nr == MV_AVX2_NR && kr == MV_AVX2_KR) has_min = pack_wide16(src, n_stride, k_stride, n, k, kp, (int16_t *)dst, sums, &done);
    if (done == n) return has_min;
    return mv_pack_b_columns(src, n_stride, k_stride, n, k, nr, kr, kp, 1, done, dst, sums) | has_min;
}

// ---------------------------------------------------------------------------------------------
// The VNNI layout: int8, column j of a 16-column block and K group g (4 values) at
// block * kp * 16 + g * 64 + j * 4. (AVX2 is enough: every VNNI CPU has it.)

/// Row-major source (k_stride 1): every column. The column's 4-byte groups are copied from one
/// 32-byte chunk (zeros past k, so the padding of the last group is written as the zeroed buffer
/// has it); its sum from the chunk's bytes offset to unsigned (vpsadbw), less 128 per byte.
TA static int pack_rows_vnni(const int8_t *src, ptrdiff_t n_stride, size_t n, size_t k, size_t kp, int8_t *dst,
                             int32_t *sums) {
    const __m256i minus128 = _mm256_set1_epi8(-128), zero = _mm256_setzero_si256();
    __m256i seen = zero;
    int32_t groups[8] __attribute__((aligned(32)));
    for (size_t c = 0; c < n; c++) {
        const int8_t *s = src + (ptrdiff_t)c * n_stride;
        int8_t *d = dst + (c / 16) * kp * 16 + (c % 16) * 4;  // group g at d + 64 g
        __m256i vsum = zero;
        for (size_t k0 = 0; k0 < k; k0 += 32) {
            const size_t cnt = k - k0 < 32 ? k - k0 : 32;
            const __m256i v = load_chunk32(s + k0, cnt);
            seen = _mm256_or_si256(seen, _mm256_cmpeq_epi8(v, minus128));
            vsum = _mm256_add_epi64(vsum, _mm256_sad_epu8(_mm256_xor_si256(v, minus128), zero));
            _mm256_store_si256((__m256i *)groups, v);
            const size_t ng = (cnt + 3) / 4;
            for (size_t g = 0; g < ng; g++) memcpy(d + (k0 / 4 + g) * 64, &groups[g], 4);
        }
        __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(vsum), _mm256_extracti128_si256(vsum, 1));
        s2 = _mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2));
        // Each 32-byte chunk added 128 per byte, the zeros past k included.
        sums[c] = (int32_t)(_mm_cvtsi128_si64(s2) - (int64_t)128 * (int64_t)((k + 31) / 32 * 32));
    }
    return !_mm256_testz_si256(seen, seen);
}

/// Column-major source (n_stride 1): blocks [0, nfull / 16) of 16 columns. Source rows 4i ... 4i + 3
/// interleaved bytewise are exactly K group i of the block (rows past k are zero).
TA static int pack_columns_vnni(const int8_t *src, ptrdiff_t k_stride, size_t nfull, size_t k, size_t kp,
                                int8_t *dst, int32_t *sums) {
    const __m128i minus128 = _mm_set1_epi8(-128), zero = _mm_setzero_si128();
    __m128i seen = zero;
    for (size_t n0 = 0; n0 < nfull; n0 += 16) {
        int8_t *d = dst + n0 * kp;
        __m256i sum_lo = _mm256_setzero_si256(), sum_hi = _mm256_setzero_si256();
        for (size_t kk = 0; kk < k; kk += 4) {
            __m128i r[4];
            for (int t = 0; t < 4; t++)
                r[t] = kk + t < k ? _mm_loadu_si128((const __m128i *)(src + (ptrdiff_t)(kk + t) * k_stride + n0)) : zero;
            seen = _mm_or_si128(seen, _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(r[0], minus128), _mm_cmpeq_epi8(r[1], minus128)),
                                                   _mm_or_si128(_mm_cmpeq_epi8(r[2], minus128), _mm_cmpeq_epi8(r[3], minus128))));
            const __m128i a = _mm_unpacklo_epi8(r[0], r[1]), b = _mm_unpackhi_epi8(r[0], r[1]);
            const __m128i c = _mm_unpacklo_epi8(r[2], r[3]), e = _mm_unpackhi_epi8(r[2], r[3]);
            _mm_storeu_si128((__m128i *)(d + kk * 16), _mm_unpacklo_epi16(a, c));       // columns 0-3
            _mm_storeu_si128((__m128i *)(d + kk * 16 + 16), _mm_unpackhi_epi16(a, c));  // 4-7
            _mm_storeu_si128((__m128i *)(d + kk * 16 + 32), _mm_unpacklo_epi16(b, e));  // 8-11
            _mm_storeu_si128((__m128i *)(d + kk * 16 + 48), _mm_unpackhi_epi16(b, e));  // 12-15
            const __m256i s16 = _mm256_add_epi16(_mm256_add_epi16(_mm256_cvtepi8_epi16(r[0]), _mm256_cvtepi8_epi16(r[1])),
                                                 _mm256_add_epi16(_mm256_cvtepi8_epi16(r[2]), _mm256_cvtepi8_epi16(r[3])));
            sum_lo = _mm256_add_epi32(sum_lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s16)));
            sum_hi = _mm256_add_epi32(sum_hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s16, 1)));
        }
        _mm256_storeu_si256((__m256i *)(sums + n0), sum_lo);
        _mm256_storeu_si256((__m256i *)(sums + n0 + 8), sum_hi);
    }
    return !_mm_testz_si128(seen, seen);
}

int mv_pack_b_int8_avx2(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                        size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums) {
    if (nr == 16 && kr == 4) {
        if (k_stride == 1) return pack_rows_vnni(src, n_stride, n, k, kp, (int8_t *)dst, sums);
        if (n_stride == 1) {
            const size_t nfull = n / 16 * 16;
            const int has_min = pack_columns_vnni(src, k_stride, nfull, k, kp, (int8_t *)dst, sums);
            if (nfull == n) return has_min;
            return mv_pack_b_columns(src, n_stride, k_stride, n, k, nr, kr, kp, 0, nfull, dst, sums) | has_min;
        }
    }
    return mv_pack_b_columns(src, n_stride, k_stride, n, k, nr, kr, kp, 0, 0, dst, sums);
}

#else
int mv_pack_b_int8_avx2(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                        size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums) {
    (void)src; (void)n_stride; (void)k_stride; (void)n; (void)k; (void)nr; (void)kr; (void)kp; (void)dst; (void)sums;
    __builtin_trap();
}
int mv_pack_b_int16_avx2(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                         size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums) {
    (void)src; (void)n_stride; (void)k_stride; (void)n; (void)k; (void)nr; (void)kr; (void)kp; (void)dst; (void)sums;
    __builtin_trap();
}
#endif
