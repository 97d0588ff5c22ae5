// AVX-512 VNNI int8 GEMM: 8x16 tiles, `vpdpbusd` (unsigned x signed groups of 4 bytes). A rows are
// copied into a stack panel XORed with 0x80 (a + 128, unsigned); the packed bias already holds
// -128 * sum_k B[n][k], so results equal the reference exactly. Requantisation and the activation
// table lookup in 16 lanes. The Swift tests run it natively on an AVX-512 VNNI host; elsewhere the
// harness runs it through SIMDe emulation (MV_SIMDE_EMULATION).
#include "mv_int8_internal.h"

#if defined(__x86_64__)
#include "mv_int8_avx512.h"

#define MR MV_VNNI_MR
#define NR MV_VNNI_NR
#define KMAX 4096  // bytes per row of the A panel (stack: MR * KMAX)
#define MAX_BLOCKS 40  // 16-column table blocks of 64 rows (stack: 40 KiB), outputs up to 640 wide

/// Bit i set for i < n (n ≤ 64).
TVI __mmask64 mask_below(size_t n) { return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1); }

/// mv_row_correction 64 bytes a step (attention's P·V has rows of hundreds of probabilities, where
/// the byte loop cost several times the multiply-adds): Σa by vpsadbw over a XOR 0x80, where each
/// masked-off byte loads as 0 and so counts 128, like each valid one's offset, taken off at the end.
TVI int32_t row_correction_vnni(const int8_t *a, size_t k, int32_t b_zero_point) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    __m512i acc = zero;
    size_t i = 0;
    for (; i < k; i += 64)
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_xor_si512(_mm512_maskz_loadu_epi8(mask_below(k - i), a + i), flip), zero));
    int64_t lanes[8], total = 0;
    _mm512_storeu_si512((void *)lanes, acc);
    for (int j = 0; j < 8; j++) total += lanes[j];
    const int32_t s = (int32_t)(total - 128 * (int64_t)i);
    return (int32_t)((uint32_t)0 - (uint32_t)s * (uint32_t)b_zero_point);
}

/// rows[r][k0 ..< k0 + kc] XOR 0x80 into panel[r * kc ...]; beyond k the value does not matter
/// (the packed weights are zero there) and is set to 0x80. Masked loads and stores, so a short
/// row (the small K of MobileViT's first layers and of attention) costs one of each, not a byte
/// loop: a masked-off byte loads as 0, which the XOR turns into the 0x80 padding.
TVI void panel_rows(uint8_t *panel, const int8_t *const *rows, size_t k0, size_t kc, size_t k) {
    const size_t valid = k - k0 < kc ? k - k0 : kc;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int r = 0; r < MR; r++) {
        const int8_t *src = rows[r] + k0;
        uint8_t *dst = panel + (size_t)r * kc;
        size_t i = 0;
        for (; i + 64 <= valid; i += 64)
            _mm512_storeu_si512((void *)(dst + i), _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i)), flip));
        for (; i < kc; i += 64) {
            const __m512i a = _mm512_maskz_loadu_epi8(mask_below(valid > i ? valid - i : 0), (const void *)(src + i));
            _mm512_mask_storeu_epi8((void *)(dst + i), mask_below(kc - i), _mm512_xor_si512(a, flip));
        }
    }
}

/// The panel of MR whole rows of K ≤ 4096 bytes (K a multiple of 4, so kc = K) that lie one after
/// another in memory (a 1x1 convolution's NHWC input): one stream of 64-byte XORs instead of a
/// masked load and store per row.
TVI void panel_contiguous(uint8_t *panel, const int8_t *a, size_t bytes) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64)
        _mm512_store_si512((void *)(panel + i), _mm512_xor_si512(_mm512_loadu_si512((const void *)(a + i)), flip));
    if (i < bytes) {
        const __mmask64 m = mask_below(bytes - i);
        _mm512_mask_storeu_epi8((void *)(panel + i), m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, (const void *)(a + i)), flip));
    }
}

TVI void kloop_vnni(__m512i *acc, const uint8_t *panel, size_t kc, const int8_t *b, size_t groups) {
    __m512i c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3], c4 = acc[4], c5 = acc[5], c6 = acc[6], c7 = acc[7];
    const uint8_t *p0 = panel, *p1 = panel + kc, *p2 = panel + 2 * kc, *p3 = panel + 3 * kc;
    const uint8_t *p4 = panel + 4 * kc, *p5 = panel + 5 * kc, *p6 = panel + 6 * kc, *p7 = panel + 7 * kc;
    for (size_t i = 0; i < groups; i++) {
        const __m512i bv = _mm512_loadu_si512((const void *)(b + 64 * i));
        int32_t v;
#define ROW(C, P) memcpy(&v, P + 4 * i, 4); C = _mm512_dpbusd_epi32(C, _mm512_set1_epi32(v), bv)
        ROW(c0, p0); ROW(c1, p1); ROW(c2, p2); ROW(c3, p3);
        ROW(c4, p4); ROW(c5, p5); ROW(c6, p6); ROW(c7, p7);
#undef ROW
    }
    acc[0] = c0; acc[1] = c1; acc[2] = c2; acc[3] = c3; acc[4] = c4; acc[5] = c5; acc[6] = c6; acc[7] = c7;
}

/// kloop_vnni for two adjacent 16-column blocks: each broadcast of an A group feeds two
/// multiply-adds (16 accumulators), half the broadcasts per multiply-add of one block at a time.
TVI void kloop_vnni2(__m512i *acc0, __m512i *acc1, const uint8_t *panel, size_t kc, const int8_t *b0,
                     const int8_t *b1, size_t groups) {
    __m512i c0 = acc0[0], c1 = acc0[1], c2 = acc0[2], c3 = acc0[3], c4 = acc0[4], c5 = acc0[5], c6 = acc0[6], c7 = acc0[7];
    __m512i d0 = acc1[0], d1 = acc1[1], d2 = acc1[2], d3 = acc1[3], d4 = acc1[4], d5 = acc1[5], d6 = acc1[6], d7 = acc1[7];
    const uint8_t *p0 = panel, *p1 = panel + kc, *p2 = panel + 2 * kc, *p3 = panel + 3 * kc;
    const uint8_t *p4 = panel + 4 * kc, *p5 = panel + 5 * kc, *p6 = panel + 6 * kc, *p7 = panel + 7 * kc;
    for (size_t i = 0; i < groups; i++) {
        const __m512i bv = _mm512_loadu_si512((const void *)(b0 + 64 * i));
        const __m512i bw = _mm512_loadu_si512((const void *)(b1 + 64 * i));
        int32_t v;
#define ROW(C, D, P)                                 \
    memcpy(&v, P + 4 * i, 4);                        \
    {                                                \
        const __m512i a = _mm512_set1_epi32(v);      \
        C = _mm512_dpbusd_epi32(C, a, bv);           \
        D = _mm512_dpbusd_epi32(D, a, bw);           \
    }
        ROW(c0, d0, p0) ROW(c1, d1, p1) ROW(c2, d2, p2) ROW(c3, d3, p3)
        ROW(c4, d4, p4) ROW(c5, d5, p5) ROW(c6, d6, p6) ROW(c7, d7, p7)
#undef ROW
    }
    acc0[0] = c0; acc0[1] = c1; acc0[2] = c2; acc0[3] = c3; acc0[4] = c4; acc0[5] = c5; acc0[6] = c6; acc0[7] = c7;
    acc1[0] = d0; acc1[1] = d1; acc1[2] = d2; acc1[3] = d3; acc1[4] = d4; acc1[5] = d5; acc1[6] = d6; acc1[7] = d7;
}

#define MV_RQ512 TVI
#include "mv_requantize_avx512.h"

/// The activation table entries of 16 codes z in [-128, 127]: lane j of `lanes` reads
/// t[col[j] + z[j] + 128] into the low byte (col: j * 256 for per-column tables, 0 for a shared
/// one). A gather reads whole dwords, so each lane reads at min(i, 252), which stays inside its
/// own 256-entry table whatever memory follows it, and shifts the wanted byte down. Lanes outside
/// `lanes` (columns beyond n) read nothing.
TVI __m512i lut16(__m512i z, const int8_t *t, __m512i col, __mmask16 lanes) {
    const __m512i i = _mm512_add_epi32(z, _mm512_set1_epi32(128));
    const __m512i at = _mm512_min_epi32(i, _mm512_set1_epi32(252));
    const __m512i w = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, _mm512_add_epi32(col, at), t, 1);
    return _mm512_srlv_epi32(w, _mm512_slli_epi32(_mm512_sub_epi32(i, at), 3));
}

/// The MR rows' requantised codes (int32 lanes) of the 16 columns from n0 (nv of them valid).
/// `saturating` (the clamp is the whole int8 range and the caller narrows with vpmovsdb): where
/// all shifts are positive, the codes plus the zero point without the clamp, which the saturating
/// narrowing applies (two operations fewer per 16 codes).
TVI void requantize_tile16(const mv_gemm_args *p, const __m512i *acc, size_t n0, size_t nv, __m512i lo, __m512i hi,
                           __m512i zp, int saturating, __m512i *z) {
    const __mmask16 lanes = (__mmask16)((1u << nv) - 1);
    const __m512i mult = _mm512_loadu_si512((const void *)(p->multiplier + n0));
    const __m512i shift = _mm512_loadu_si512((const void *)(p->shift + n0));
    // Padding columns of a partial tile hold shift 0 or garbage: only the valid ones decide.
    const int positive = (_mm512_cmplt_epi32_mask(shift, _mm512_set1_epi32(1)) & lanes) == 0;
    if (positive) {
        const rq16_positive qp = rq16_positive_setup(mult, shift);
        if (saturating)
            for (int r = 0; r < MR; r++) z[r] = _mm512_add_epi32(rq16_positive_unclamped(acc[r], mult, &qp), zp);
        else
            for (int r = 0; r < MR; r++) z[r] = rq16_positive_apply(acc[r], mult, &qp, lo, hi, zp);
    } else {
        for (int r = 0; r < MR; r++) z[r] = rq16(acc[r], mult, shift, lo, hi, zp);
    }
}

/// Rows m0 ..< m0 + mr of the 16 columns from n0 (nv of them valid): int32 stores, or
/// requantisation, the activation table and int8 stores.
TVI void store_tile16(const mv_gemm_args *p, int int32_out, const __m512i *acc, size_t m0, int mr, size_t n0,
                      size_t nv, __m512i lo, __m512i hi, __m512i zp, __m512i col) {
    const __mmask16 lanes = (__mmask16)((1u << nv) - 1);
    if (int32_out) {
        for (int r = 0; r < mr; r++) _mm512_mask_storeu_epi32((void *)(mv_c_row32(p, m0 + r) + n0), lanes, acc[r]);
        return;
    }
    const int8_t *t = p->lut ? p->lut + n0 * p->lut_stride : NULL;
    const int saturating = !t && p->clamp_min == -128 && p->clamp_max == 127;
    // All rows' requantisation, then all their table gathers, then the stores: each step's rows
    // are independent, so the gathers' latencies overlap (rows beyond mr are computed and dropped).
    __m512i z[MR];
    requantize_tile16(p, acc, n0, nv, lo, hi, zp, saturating, z);
    if (t)
        for (int r = 0; r < MR; r++) z[r] = lut16(z[r], t, col, lanes);
    for (int r = 0; r < mr; r++) {
        // Saturating: the clamp. Otherwise the low byte of each lane (a table entry sits in the
        // low byte of its gathered dword).
        const __m128i v = saturating ? _mm512_cvtsepi32_epi8(z[r]) : _mm512_cvtepi32_epi8(z[r]);
        int8_t *dst = mv_c_row8(p, m0 + r) + n0;
        if (nv == NR) {
            _mm_storeu_si128((__m128i *)dst, v);
        } else {
            int8_t tmp[16];
            _mm_storeu_si128((__m128i *)tmp, v);
            memcpy(dst, tmp, nv);
        }
    }
}

/// A whole 16-column tile's MR rows, requantised, into rows `block_rows` ... of a 64-row table
/// block: four rows' codes, narrowed with saturation (the clamp where it is the whole int8 range;
/// otherwise the codes are clamped already), make one 64-byte store (rows beyond the valid ones
/// are scratch).
TVI void block_tile16(const mv_gemm_args *p, const __m512i *acc, size_t n0, __m512i lo, __m512i hi, __m512i zp,
                      int8_t *block_rows) {
    __m512i z[MR];
    requantize_tile16(p, acc, n0, NR, lo, hi, zp, p->clamp_min == -128 && p->clamp_max == 127, z);
    for (int r = 0; r < MR; r += 4) {
        __m512i v = _mm512_castsi128_si512(_mm512_cvtsepi32_epi8(z[r]));
        v = _mm512_inserti32x4(v, _mm512_cvtsepi32_epi8(z[r + 1]), 1);
        v = _mm512_inserti32x4(v, _mm512_cvtsepi32_epi8(z[r + 2]), 2);
        v = _mm512_inserti32x4(v, _mm512_cvtsepi32_epi8(z[r + 3]), 3);
        _mm512_store_si512((void *)(block_rows + NR * r), v);
    }
}

/// The tables of the 16 columns from n0 over a block (p->lut_block), then its first `rows` rows
/// to output rows m0 ...
TVI void flush_block16(const mv_gemm_args *p, int8_t *block, size_t m0, size_t rows, size_t n0) {
    p->lut_block(block, p->lut + n0 * p->lut_stride);
    for (size_t r = 0; r < rows; r++)
        _mm_storeu_si128((__m128i *)(mv_c_row8(p, m0 + r) + n0), _mm_load_si128((const __m128i *)(block + NR * r)));
}

/// One row tile's accumulators for the column pair from n0 (acc1 only where `two`): bias, row
/// correction and the K loop over the panel the caller built (K <= KMAX), or over panels of
/// KMAX-byte chunks built here.
TVI void tile_accumulate(const mv_gemm_args *p, uint8_t *panel, const int8_t *const *arow, const int32_t *roff,
                         size_t n0, int two, __m512i *acc0, __m512i *acc1) {
    const size_t k = p->k, kp = (k + 3) & ~(size_t)3;
    const int8_t *b0 = (const int8_t *)p->packed + n0 * kp, *b1 = b0 + NR * kp;
    const __m512i bias0 = _mm512_loadu_si512((const void *)(p->bias + n0));
    for (int r = 0; r < MR; r++) acc0[r] = _mm512_add_epi32(bias0, _mm512_set1_epi32(roff[r]));
    if (two) {
        const __m512i bias1 = _mm512_loadu_si512((const void *)(p->bias + n0 + NR));
        for (int r = 0; r < MR; r++) acc1[r] = _mm512_add_epi32(bias1, _mm512_set1_epi32(roff[r]));
    }
    if (kp <= KMAX) {
        if (two) kloop_vnni2(acc0, acc1, panel, kp, b0, b1, kp / 4);
        else kloop_vnni(acc0, panel, kp, b0, kp / 4);
        return;
    }
    for (size_t k0 = 0; k0 < kp; k0 += KMAX) {
        const size_t kc = kp - k0 < KMAX ? kp - k0 : KMAX;
        panel_rows(panel, arow, k0, kc, k);
        if (two) kloop_vnni2(acc0, acc1, panel, kc, b0 + k0 * NR, b1 + k0 * NR, kc / 4);
        else kloop_vnni(acc0, panel, kc, b0 + k0 * NR, kc / 4);
    }
}

/// Row tile m0's A row pointers (rows past m repeat row m0).
TVI int row_tile(const mv_gemm_args *p, size_t m0, const int8_t **arow) {
    const int mr = p->m - m0 < MR ? (int)(p->m - m0) : MR;
    for (int r = 0; r < MR; r++) arow[r] = mv_a_row(p, m0 + (r < mr ? r : 0));
    return mr;
}

/// The row corrections -b_zero_point * Σ_k A[r][k] of a row tile (0 without a B zero point).
/// From a whole panel (`from_panel`: rows of kp bytes a + 128, padding 0x80), vpsadbw over each
/// row's bytes, whose sum is Σa + 128 kp, and one reduction of all eight rows' lane sums, where
/// attention's P·V (rows of hundreds of probabilities) spent a fifth of its time reducing each
/// row on its own; otherwise row by row from A.
TVI void row_corrections(const mv_gemm_args *p, const uint8_t *panel, int from_panel, const int8_t *const *arow,
                         int32_t *roff) {
    if (!p->b_zero_point) {
        for (int r = 0; r < MR; r++) roff[r] = 0;
        return;
    }
    if (!from_panel) {
        for (int r = 0; r < MR; r++) roff[r] = row_correction_vnni(arow[r], p->k, p->b_zero_point);
        return;
    }
    const size_t kp = (p->k + 3) & ~(size_t)3;
    const __m512i zero = _mm512_setzero_si512();
    __m512i v[MR];
    for (int r = 0; r < MR; r++) {
        const uint8_t *row = panel + (size_t)r * kp;
        __m512i acc = zero;
        size_t i = 0;
        for (; i + 64 <= kp; i += 64) acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_loadu_si512((const void *)(row + i)), zero));
        if (i < kp) acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(mask_below(kp - i), (const void *)(row + i)), zero));
        v[r] = acc;
    }
    // Pairs of rows: each 128-bit lane L holds (row 2j, row 2j + 1) partial sums of lane L.
    __m512i w[4];
    for (int j = 0; j < 4; j++)
        w[j] = _mm512_add_epi64(_mm512_unpacklo_epi64(v[2 * j], v[2 * j + 1]), _mm512_unpackhi_epi64(v[2 * j], v[2 * j + 1]));
    // Lanes 0 + 2 and 1 + 3 of two pairs: lanes (pair, half). (Two-source quadword permutes,
    // which the SIMDe harness emulates, where it lacks vshufi64x2.)
    const __m512i lo = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11), hi = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
    const __m512i x0 = _mm512_add_epi64(_mm512_permutex2var_epi64(w[0], lo, w[1]), _mm512_permutex2var_epi64(w[0], hi, w[1]));
    const __m512i x1 = _mm512_add_epi64(_mm512_permutex2var_epi64(w[2], lo, w[3]), _mm512_permutex2var_epi64(w[2], hi, w[3]));
    // The two halves of each pair: quadword r holds row r's sum.
    const __m512i even = _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13), odd = _mm512_setr_epi64(2, 3, 6, 7, 10, 11, 14, 15);
    const __m512i t = _mm512_add_epi64(_mm512_permutex2var_epi64(x0, even, x1), _mm512_permutex2var_epi64(x0, odd, x1));
    int64_t sums[MR];
    _mm512_storeu_si512((void *)sums, t);
    for (int r = 0; r < MR; r++) {
        const uint32_t sa = (uint32_t)(sums[r] - 128 * (int64_t)kp);
        roff[r] = (int32_t)((uint32_t)0 - sa * (uint32_t)p->b_zero_point);
    }
}

TVI void gemm_vnni(const mv_gemm_args *p, int int32_out) {
    const size_t k = p->k, n = p->n, kp = (k + 3) & ~(size_t)3;
    const int single = kp <= KMAX;
    uint8_t panel[MR * KMAX] __attribute__((aligned(64)));
    const __m512i zp = _mm512_set1_epi32(p->output_zero_point);
    const __m512i lo = _mm512_set1_epi32(p->clamp_min - p->output_zero_point);
    const __m512i hi = _mm512_set1_epi32(p->clamp_max - p->output_zero_point);
    // Lane j's table offset within a tile: column j's table for per-column tables.
    const __m512i col = p->lut_stride
        ? _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 8)
        : _mm512_setzero_si512();
    const int contiguous = !p->a_offsets && p->a_stride == (ptrdiff_t)k && k == kp;
    const int8_t *arow[MR];
    int32_t roff[MR];
    __m512i acc0[MR], acc1[MR];
    // Per-column tables by p->lut_block over blocks of 64 rows: each whole tile's codes go
    // straight into its 64-row table block (block_tile16), which is looked up and stored once when
    // the 64 rows are done (flush_block16). Partial last tiles, and tables of outputs wider than
    // MAX_BLOCKS tiles, take store_tile16's gathers. (Copying stored rows into blocks and back
    // cost the stem's 8 x 16 tiles 40% of their time.)
    const int blocked = !int32_out && p->lut && p->lut_stride && p->lut_block && n / NR <= MAX_BLOCKS;
    int8_t blocks[MAX_BLOCKS][64 * NR] __attribute__((aligned(64)));  // touched only when blocked
    for (size_t m0 = 0; m0 < p->m; m0 += MR) {
        const int mr = row_tile(p, m0, arow);
        if (single) {
            if (contiguous && mr == MR) panel_contiguous(panel, arow[0], MR * k);
            else panel_rows(panel, arow, 0, kp, k);
        }
        row_corrections(p, panel, single, arow, roff);
        // Two 16-column blocks at a time (one where a single block is left).
        for (size_t n0 = 0; n0 < n; n0 += 2 * NR) {
            const size_t left = n - n0;
            const int two = left > NR;
            const size_t nv0 = left < NR ? left : NR, nv1 = two ? (left - NR < NR ? left - NR : NR) : 0;
            tile_accumulate(p, panel, arow, roff, n0, two, acc0, acc1);
            if (blocked && nv0 == NR) block_tile16(p, acc0, n0, lo, hi, zp, blocks[n0 / NR] + NR * (m0 % 64));
            else store_tile16(p, int32_out, acc0, m0, mr, n0, nv0, lo, hi, zp, col);
            if (!two) continue;
            if (blocked && nv1 == NR) block_tile16(p, acc1, n0 + NR, lo, hi, zp, blocks[n0 / NR + 1] + NR * (m0 % 64));
            else store_tile16(p, int32_out, acc1, m0, mr, n0 + NR, nv1, lo, hi, zp, col);
        }
        if (blocked && (m0 % 64 == 64 - MR || m0 + MR >= p->m)) {
            const size_t mb = m0 - m0 % 64;
            for (size_t t = 0; t < n / NR; t++) flush_block16(p, blocks[t], mb, m0 + (size_t)mr - mb, NR * t);
        }
    }
}

TV void mv_gemm_q8_avx512vnni(const mv_gemm_args *p) { gemm_vnni(p, 0); }
TV void mv_gemm_i32_avx512vnni(const mv_gemm_args *p) { gemm_vnni(p, 1); }

/// The VNNI layout from column-major B (n_stride 1: attention's values, packed per (patch position,
/// head) at every inference): source rows 4i ... 4i + 3 of a 16-column block, interleaved bytewise,
/// are K group i. As the AVX2 packer's pack_columns_vnni, but a last block of fewer than 16 columns
/// (head sizes 20, 24, 30, 36, 60 of XXS, XS and S) takes byte-masked loads instead of the byte
/// loop, and the sums come from vpdpbusd over the packed group. Columns past n are written as
/// zeros, as dst already holds them.
TVI int pack_columns_avx512(const int8_t *src, ptrdiff_t k_stride, size_t n, size_t k, size_t kp, int8_t *dst,
                            int32_t *sums) {
    const __m512i ones = _mm512_set1_epi8(1), minus128 = _mm512_set1_epi8(-128);
    __mmask64 seen = 0;
    for (size_t n0 = 0; n0 < n; n0 += NR) {
        const size_t nv = n - n0 < NR ? n - n0 : NR;
        const __mmask16 m = (__mmask16)((1u << nv) - 1);
        int8_t *d = dst + n0 * kp;
        __m512i sum = _mm512_setzero_si512();
        for (size_t kk = 0; kk < k; kk += 4) {
            __m128i r[4];
            for (size_t t = 0; t < 4; t++)
                r[t] = kk + t < k ? _mm_maskz_loadu_epi8(m, src + (ptrdiff_t)(kk + t) * k_stride + n0) : _mm_setzero_si128();
            const __m128i a = _mm_unpacklo_epi8(r[0], r[1]), b = _mm_unpackhi_epi8(r[0], r[1]);
            const __m128i c = _mm_unpacklo_epi8(r[2], r[3]), e = _mm_unpackhi_epi8(r[2], r[3]);
            __m512i v = _mm512_castsi128_si512(_mm_unpacklo_epi16(a, c));  // columns 0-3
            v = _mm512_inserti32x4(v, _mm_unpackhi_epi16(a, c), 1);        // 4-7
            v = _mm512_inserti32x4(v, _mm_unpacklo_epi16(b, e), 2);        // 8-11
            v = _mm512_inserti32x4(v, _mm_unpackhi_epi16(b, e), 3);        // 12-15
            seen |= _mm512_cmpeq_epi8_mask(v, minus128);
            sum = _mm512_dpbusd_epi32(sum, ones, v);
            _mm512_storeu_si512((void *)(d + kk * 16), v);
        }
        _mm512_mask_storeu_epi32((void *)(sums + n0), m, sum);
    }
    return seen != 0;
}

/// The VNNI layout from row-major B (k_stride 1) with K a multiple of 4 (attention's keys, packed
/// per (patch position, head) at every inference): group g of a 16-column block is one gather of
/// dword g of the block's 16 rows, so the block is K/4 gathers and stores, where the AVX2 packer
/// copies each row's dwords one at a time. Row sums by vpdpbusd with unsigned ones (the sum of the
/// lane's four signed bytes); columns past n are written as zeros (groups past K stay the zeros
/// dst already holds). Column-major sources go to pack_columns_avx512, everything else to the AVX2
/// packer.
TV int mv_pack_b_int8_avx512vnni(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                                 size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums) {
    if (nr == NR && kr == 4 && n_stride == 1 && k_stride != 1)
        return pack_columns_avx512(src, k_stride, n, k, kp, (int8_t *)dst, sums);
    if (nr != NR || kr != 4 || k_stride != 1 || k % 4 != 0 || k == 0 || n_stride <= 0 || n_stride > INT32_MAX / 16)
        return mv_pack_b_int8_avx2(src, n_stride, k_stride, n, k, nr, kr, kp, dst, sums);
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32((int32_t)n_stride));
    const __m512i ones = _mm512_set1_epi8(1), minus128 = _mm512_set1_epi8(-128);
    __mmask64 seen = 0;
    for (size_t n0 = 0; n0 < n; n0 += NR) {
        const size_t nv = n - n0 < NR ? n - n0 : NR;
        const __mmask16 lanes = (__mmask16)((1u << nv) - 1);
        const int8_t *block = src + (ptrdiff_t)n0 * n_stride;
        int8_t *d = (int8_t *)dst + n0 * kp;
        __m512i sum = _mm512_setzero_si512();
        for (size_t g = 0; g < k / 4; g++) {
            const __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, rows, block + 4 * g, 1);
            seen |= _mm512_cmpeq_epi8_mask(v, minus128);
            sum = _mm512_dpbusd_epi32(sum, ones, v);
            _mm512_storeu_si512((void *)(d + 64 * g), v);
        }
        _mm512_mask_storeu_epi32((void *)(sums + n0), lanes, sum);
    }
    return seen != 0;
}

#else
void mv_gemm_q8_avx512vnni(const mv_gemm_args *p) { (void)p; __builtin_trap(); }
void mv_gemm_i32_avx512vnni(const mv_gemm_args *p) { (void)p; __builtin_trap(); }
int mv_pack_b_int8_avx512vnni(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                              size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums) {
    (void)src; (void)n_stride; (void)k_stride; (void)n; (void)k; (void)nr; (void)kr; (void)kp; (void)dst; (void)sums;
    __builtin_trap();
}
#endif
