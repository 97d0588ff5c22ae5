// AVX-512 (VNNI) depthwise 3x3 (NHWC): 32 channels of two output pixels per zmm, one pixel in each
// 256-bit half, so every instruction does the work of two AVX2 ones (the AVX2 loop widens each tap
// to int16 and pairs taps for `vpmaddwd`; 32-channel halves keep the 32- and 48-channel layers of
// MobileViT, which dominate its depthwise time, from wasting half of a 64-channel vector).
//
// Taps are combined four at a time with `vpdpbusd` (four unsigned x signed byte products summed
// into int32): the tap bytes, flipped to unsigned (x + 128 = x ^ 0x80), are interleaved with two
// rounds of in-lane unpacks so that each dword holds (x_t0, x_t1, x_t2, x_t3) of one channel, and
// tap 8 is spread into dwords with one `vpshufb` (the other three weights of its group are 0). The
// packed bias already subtracts 128 * sum_t w[t][c], so the int32 accumulator equals the
// reference's exactly (wrapping arithmetic agrees mod 2^32), also for weights of -128.
//
// The unpacks leave, in 128-bit lane L of accumulator k, channels 16L + 4k + j (j = 0..3); two
// rounds of saturating packs then return them to natural order, which is why bias, multiplier and
// shift are stored per group in that accumulator order (see mv_int8.h). Requantisation, zero
// point, clamp and tables as in dwconv_avx2.c (the same exact forms, in 16 lanes).
//
// Selected by the kernel table (KernelConfigs.swift) where the CPU also has AVX-512 VBMI. On a
// Sapphire Rapids host it is 1.2-1.6x the AVX2 loop without tables (128x128x32: 200 vs 305 us;
// 64x64x48: 89 vs 110 us), but every depthwise layer of MobileViT ends in per-channel SiLU tables,
// and looked up one byte at a time (store32) they dominate: there it measured no faster than the
// AVX2 loop. With VBMI, whole groups of 16 channels x 64 pixels are looked up at once
// (p->lut_block, channel_lut_avx512vbmi.c): dw_group_blocked and dw_group16 write the codes to
// such blocks instead. Byte lookups tried and no faster: vpgatherdd, and table offsets computed in
// vectors.
#include "mv_int8_internal.h"

#if defined(__x86_64__)
#include "mv_int8_avx512.h"

#define XCHUNK 64  // output pixels per tap-pointer batch

/// Requantisation constants of one accumulator (8 slots, the same for both pixels' halves).
typedef struct { __m512i mult, mult_odd, rs1, round_even, round_odd, ls, rbit; } rq16_consts;

/// Constants of multipliers and shifts (the slots of each half or quarter). Fast-path terms as in
/// rq_prepare (mv_int8_avx2.h): 2^30 + 2^(30 + min(s, 32)) per 64-bit lane, even and odd slots.
TVI rq16_consts rq16_prepare(__m512i mult, __m512i s) {
    rq16_consts q;
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    q.mult = mult;
    q.mult_odd = _mm512_srli_epi64(q.mult, 32);
    q.ls = _mm512_max_epi32(_mm512_sub_epi32(zero, s), zero);
    q.rs1 = _mm512_max_epi32(_mm512_sub_epi32(s, one), zero);
    q.rbit = _mm512_min_epi32(_mm512_max_epi32(s, zero), one);
    const __m512i sc = _mm512_min_epi32(_mm512_max_epi32(s, zero), _mm512_set1_epi32(32));
    const __m512i r30 = _mm512_set1_epi64((int64_t)1 << 30);
    q.round_even = _mm512_add_epi64(r30, _mm512_sllv_epi64(r30, _mm512_and_si512(sc, _mm512_set1_epi64(0xFFFFFFFF))));
    q.round_odd = _mm512_add_epi64(r30, _mm512_sllv_epi64(r30, _mm512_srli_epi64(sc, 32)));
    return q;
}

/// z = requantize(acc) for 16 lanes. `all_pos`: every shift of the valid slots is >= 1, where the
/// two roundings fold into one 64-bit add and the high dword (derivation in rq_apply,
/// mv_int8_avx2.h); otherwise the general form of rq16 (gemm_avx512vnni.c).
TVI __m512i rq16_apply(__m512i acc, const rq16_consts *q, int all_pos, int any_neg) {
    if (all_pos) {
        // mul_epi32 reads the low dword of each 64-bit lane: a shift, not a shuffle, brings the
        // odd dwords down (shifts and the products avoid the shuffle port the unpacks need).
        const __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(acc, q->mult), q->round_even);
        const __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(acc, 32), q->mult_odd), q->round_odd);
        const __m512i hi = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(pe, 32), po);
        return _mm512_srav_epi32(hi, q->rs1);
    }
    __m512i x = acc;
    if (any_neg) {
        // Saturating left shift: where shifting back does not restore acc, saturate.
        const __m512i sh = _mm512_sllv_epi32(acc, q->ls);
        const __mmask16 ovf = _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(sh, q->ls), acc);
        const __m512i sat = _mm512_xor_si512(_mm512_srai_epi32(acc, 31), _mm512_set1_epi32(INT32_MAX));
        x = _mm512_mask_blend_epi32(ovf, sh, sat);
    }
    const __m512i rnd = _mm512_set1_epi64((int64_t)1 << 30);
    const __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(x, q->mult), rnd);
    const __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), q->mult_odd), rnd);
    // Bits 31..62 of each product: low dword of pe >> 31, high dword of po << 1.
    const __m512i y = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(pe, 31), _mm512_slli_epi64(po, 1));
    const __m512i t = _mm512_srav_epi32(y, q->rs1);
    return _mm512_srav_epi32(_mm512_add_epi32(t, q->rbit), q->rbit);
}

/// Per-group state: weights (12 vectors: 2 four-tap quads and tap 8, 4 accumulators each), bias,
/// requantisation constants, output stage constants.
typedef struct {
    __m512i w[12], bias[4];
    rq16_consts q[4];
    int all_pos, any_neg;
} group_consts;

/// 32 channels (c0 ..) of tap row t, two pixels: pixel a in the low half, b in the high half,
/// flipped to unsigned. `full`: all 32 channels valid; else the bytes beyond mask m read as 0
/// (masked loads do not touch them, so the row's end may be the end of a buffer).
TVI __m512i tap2(const int8_t *a, const int8_t *b, int full, __mmask32 m, __m512i flip) {
    const __m256i va = full ? _mm256_loadu_si256((const __m256i *)a) : _mm256_maskz_loadu_epi8(m, a);
    const __m256i vb = full ? _mm256_loadu_si256((const __m256i *)b) : _mm256_maskz_loadu_epi8(m, b);
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(va), vb, 1), flip);
}

/// acc[k] += taps x0..x3 · weights w[0..3] (each dword: 4 taps of one channel).
TVI void quad(__m512i *acc, __m512i x0, __m512i x1, __m512i x2, __m512i x3, const __m512i *w) {
    const __m512i p = _mm512_unpacklo_epi8(x0, x1), q = _mm512_unpackhi_epi8(x0, x1);
    const __m512i r = _mm512_unpacklo_epi8(x2, x3), s = _mm512_unpackhi_epi8(x2, x3);
    acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_unpacklo_epi16(p, r), w[0]);
    acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_unpackhi_epi16(p, r), w[1]);
    acc[2] = _mm512_dpbusd_epi32(acc[2], _mm512_unpacklo_epi16(q, s), w[2]);
    acc[3] = _mm512_dpbusd_epi32(acc[3], _mm512_unpackhi_epi16(q, s), w[3]);
}

/// The taps x (flipped, 16 channels per 128-bit lane) times the weights into acc, requantised,
/// zero point and clamp: int8 outputs in natural channel order within each 128-bit lane.
TVI __m512i dw_finish(__m512i *acc, const __m512i *x, const group_consts *g, __m512i zp, __m512i lo, __m512i hi) {
    quad(acc, x[0], x[1], x[2], x[3], g->w);
    quad(acc, x[4], x[5], x[6], x[7], g->w + 4);
    // Tap 8: byte 4k + j of each lane into every byte of dword j (only byte 0 has a weight).
    acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_shuffle_epi8(x[8], _mm512_broadcast_i32x4(_mm_setr_epi32(0x00000000, 0x01010101, 0x02020202, 0x03030303))), g->w[8]);
    acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_shuffle_epi8(x[8], _mm512_broadcast_i32x4(_mm_setr_epi32(0x04040404, 0x05050505, 0x06060606, 0x07070707))), g->w[9]);
    acc[2] = _mm512_dpbusd_epi32(acc[2], _mm512_shuffle_epi8(x[8], _mm512_broadcast_i32x4(_mm_setr_epi32(0x08080808, 0x09090909, 0x0A0A0A0A, 0x0B0B0B0B))), g->w[10]);
    acc[3] = _mm512_dpbusd_epi32(acc[3], _mm512_shuffle_epi8(x[8], _mm512_broadcast_i32x4(_mm_setr_epi32(0x0C0C0C0C, 0x0D0D0D0D, 0x0E0E0E0E, 0x0F0F0F0F))), g->w[11]);
    __m512i z[4];
    for (int k = 0; k < 4; k++) z[k] = rq16_apply(acc[k], &g->q[k], g->all_pos, g->any_neg);
    // Saturating packs are exact here: the clamp bounds lie inside int8 (as in dwconv_avx2.c).
    const __m512i p01 = _mm512_adds_epi16(_mm512_packs_epi32(z[0], z[1]), zp);
    const __m512i p23 = _mm512_adds_epi16(_mm512_packs_epi32(z[2], z[3]), zp);
    return _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(p01, p23), lo), hi);
}

/// Two output pixels (tap pointers ta, tb), channels c0 ..< c0 + 32: int8 outputs after
/// requantisation, zero point and clamp; pixel a's 32 bytes in the low half.
TVI __m512i dw2(const int8_t *const *ta, const int8_t *const *tb, size_t c0, int full, __mmask32 m,
                const group_consts *g, __m512i zp, __m512i lo, __m512i hi) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i acc[4] = {g->bias[0], g->bias[1], g->bias[2], g->bias[3]};
    __m512i x[9];
    for (int i = 0; i < 9; i++) x[i] = tap2(ta[i] + c0, tb[i] + c0, full, m, flip);
    return dw_finish(acc, x, g, zp, lo, hi);
}

/// dw2 for a last group of at most 16 channels: four pixels, one per 128-bit lane (the group's lane
/// 0 of weights and constants in every lane), so that 48-, 80-, 112-channel layers do not spend a
/// whole 32-channel pass on 16 channels. Returns pixel i's 16 outputs in lane i.
TVI __m512i dw4(const int8_t *const *const *t, size_t c0, __mmask16 m, const group_consts *g, __m512i zp, __m512i lo,
                __m512i hi) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i acc[4] = {g->bias[0], g->bias[1], g->bias[2], g->bias[3]};
    __m512i x[9];
    for (int i = 0; i < 9; i++) {
        __m512i v = _mm512_castsi128_si512(_mm_maskz_loadu_epi8(m, t[0][i] + c0));
        v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, t[1][i] + c0), 1);
        v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, t[2][i] + c0), 2);
        v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, t[3][i] + c0), 3);
        x[i] = _mm512_xor_si512(v, flip);
    }
    return dw_finish(acc, x, g, zp, lo, hi);
}

/// Stores one pixel's 32 (full) or nv outputs, through the activation table(s) when there are any.
TVI void store32(int8_t *dst, __m256i v, int full, __mmask32 m, size_t nv, const mv_dw_args *p, size_t c0) {
    if (full && p->lut) {
        // The codes straight from the register, as mv_store16_lut_avx2 does (storing them and
        // reading them back, or computing the table offsets in vectors, measured slower).
        const __m128i v0 = _mm256_castsi256_si128(v), v1 = _mm256_extracti128_si256(v, 1);
        const uint64_t w0 = (uint64_t)_mm_cvtsi128_si64(v0), w1 = (uint64_t)_mm_extract_epi64(v0, 1);
        const uint64_t w2 = (uint64_t)_mm_cvtsi128_si64(v1), w3 = (uint64_t)_mm_extract_epi64(v1, 1);
        if (p->lut_stride == 0) {
            mv_apply_lut8_word(dst, w0, p->lut, 0);
            mv_apply_lut8_word(dst + 8, w1, p->lut, 0);
            mv_apply_lut8_word(dst + 16, w2, p->lut, 0);
            mv_apply_lut8_word(dst + 24, w3, p->lut, 0);
        } else {
            const int8_t *t = p->lut + c0 * 256;
            mv_apply_lut8_word(dst, w0, t, 256);
            mv_apply_lut8_word(dst + 8, w1, t + 8 * 256, 256);
            mv_apply_lut8_word(dst + 16, w2, t + 16 * 256, 256);
            mv_apply_lut8_word(dst + 24, w3, t + 24 * 256, 256);
        }
    } else if (full) {
        _mm256_storeu_si256((__m256i *)dst, v);
    } else if (!p->lut) {
        _mm256_mask_storeu_epi8(dst, m, v);
    } else {
        // Whole words of codes through the unrolled lookups, the rest one by one (the 48-channel
        // layers leave 16 channels here).
        uint64_t w[4];
        _mm256_storeu_si256((__m256i *)w, v);
        size_t i = 0;
        for (; i + 8 <= nv; i += 8) {
            if (p->lut_stride == 0) mv_apply_lut8_word(dst + i, w[i / 8], p->lut, 0);
            else mv_apply_lut8_word(dst + i, w[i / 8], p->lut + (c0 + i) * 256, 256);
        }
        if (i < nv) {
            memcpy(dst + i, (const int8_t *)w + i, nv - i);
            mv_apply_lut_at(dst + i, nv - i, p->lut, p->lut_stride, c0 + i);
        }
    }
}

/// The pixels [0, nx) of one tap batch, channel group c0 (full: 32 valid channels).
TVI void dw_group(const mv_dw_args *p, const int8_t *const *taps, size_t nx, int8_t *o, size_t c0, int full,
                  __mmask32 m, size_t nv, const group_consts *g, __m512i zp, __m512i lo, __m512i hi) {
    const ptrdiff_t ps = p->out_pixel_stride;
    size_t i = 0;
    for (; i + 2 <= nx; i += 2, o += 2 * ps) {
        const __m512i r = dw2(taps + i * 9, taps + (i + 1) * 9, c0, full, m, g, zp, lo, hi);
        store32(o, _mm512_castsi512_si256(r), full, m, nv, p, c0);
        store32(o + ps, _mm512_extracti64x4_epi64(r, 1), full, m, nv, p, c0);
    }
    if (i < nx) {  // an odd last pixel: both halves compute it
        const __m512i r = dw2(taps + i * 9, taps + i * 9, c0, full, m, g, zp, lo, hi);
        store32(o, _mm512_castsi512_si256(r), full, m, nv, p, c0);
    }
}

/// dw_group for 32 valid channels with per-channel tables applied by `p->lut_block` (AVX-512
/// VBMI): the codes of channels c0..c0+15 go to block a and those of c0+16..c0+31 to block b (64
/// rows of 16, row = pixel), each block is looked up whole, and the pixels are copied out.
TVI void dw_group_blocked(const mv_dw_args *p, const int8_t *const *taps, size_t nx, int8_t *o, size_t c0,
                          const group_consts *g, __m512i zp, __m512i lo, __m512i hi, int8_t *a, int8_t *b) {
    size_t i = 0;
    for (; i < nx; i += 2) {
        // An odd last pixel: both halves compute it, and row i + 1 (< XCHUNK) is scratch.
        const int8_t *const *tb = taps + (i + 1 < nx ? i + 1 : i) * 9;
        const __m512i r = dw2(taps + i * 9, tb, c0, 1, (__mmask32)0xFFFFFFFFu, g, zp, lo, hi);
        // 128-bit lanes: pixel i's channels 0-15, 16-31, then pixel i + 1's; to [0, 2 | 1, 3].
        const __m512i s = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7), r);
        _mm256_store_si256((__m256i *)(a + 16 * i), _mm512_castsi512_si256(s));
        _mm256_store_si256((__m256i *)(b + 16 * i), _mm512_extracti64x4_epi64(s, 1));
    }
    p->lut_block(a, p->lut + c0 * 256);
    p->lut_block(b, p->lut + (c0 + 16) * 256);
    const ptrdiff_t ps = p->out_pixel_stride;
    for (size_t j = 0; j < nx; j++, o += ps) {
        const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_load_si128((const __m128i *)(a + 16 * j))),
                                                  _mm_load_si128((const __m128i *)(b + 16 * j)), 1);
        _mm256_storeu_si256((__m256i *)o, v);
    }
}

/// The pixels [0, nx) of one tap batch for a last group of nv <= 16 channels, four at a time (dw4;
/// missing pixels of the last four repeat the last one).
TVI void dw_group16(const mv_dw_args *p, const int8_t *const *taps, size_t nx, int8_t *o, size_t c0, size_t nv,
                    const group_consts *g, __m512i zp, __m512i lo, __m512i hi, int8_t *block) {
    const ptrdiff_t ps = p->out_pixel_stride;
    const __mmask16 m = (__mmask16)((1u << nv) - 1);
    if (nv == 16 && block) {
        // Per-channel tables by p->lut_block: pixel i + j's codes are lane j, row i + j of the
        // block (rows past nx, < XCHUNK, are scratch); then the block is looked up and copied out.
        for (size_t i = 0; i < nx; i += 4) {
            const size_t n = nx - i < 4 ? nx - i : 4;
            const int8_t *const *t[4];
            for (size_t j = 0; j < 4; j++) t[j] = taps + (i + (j < n ? j : n - 1)) * 9;
            _mm512_store_si512((void *)(block + 16 * i), dw4(t, c0, m, g, zp, lo, hi));
        }
        p->lut_block(block, p->lut + c0 * 256);
        for (size_t j = 0; j < nx; j++, o += ps)
            _mm_storeu_si128((__m128i *)o, _mm_load_si128((const __m128i *)(block + 16 * j)));
        return;
    }
    for (size_t i = 0; i < nx; i += 4, o += 4 * ps) {
        const size_t n = nx - i < 4 ? nx - i : 4;
        const int8_t *const *t[4];
        for (size_t j = 0; j < 4; j++) t[j] = taps + (i + (j < n ? j : n - 1)) * 9;
        const __m512i r = dw4(t, c0, m, g, zp, lo, hi);
        int8_t tmp[64];
        _mm512_storeu_si512((void *)tmp, r);
        for (size_t j = 0; j < n; j++) {
            int8_t *dst = o + (ptrdiff_t)j * ps;
            if (!p->lut) {
                memcpy(dst, tmp + 16 * j, nv);
                continue;
            }
            // As store32's tail: whole words of codes unrolled, the rest one by one.
            size_t c = 0;
            for (; c + 8 <= nv; c += 8) {
                uint64_t w;
                memcpy(&w, tmp + 16 * j + c, 8);
                if (p->lut_stride == 0) mv_apply_lut8_word(dst + c, w, p->lut, 0);
                else mv_apply_lut8_word(dst + c, w, p->lut + (c0 + c) * 256, 256);
            }
            if (c < nv) {
                memcpy(dst + c, tmp + 16 * j + c, nv - c);
                mv_apply_lut_at(dst + c, nv - c, p->lut, p->lut_stride, c0 + c);
            }
        }
    }
}

TV void mv_dw3x3_avx512(const mv_dw_args *p) {
    const size_t C = p->channels, groups = (C + 31) / 32;
    const int8_t *packed = (const int8_t *)p->packed;
    const __m512i zp = _mm512_set1_epi16((int16_t)p->output_zero_point);
    const __m512i lo = _mm512_set1_epi8((char)p->clamp_min), hi = _mm512_set1_epi8((char)p->clamp_max);
    const int8_t *taps[XCHUNK * 9];
    // Blocks of XCHUNK rows x 16 codes for p->lut_block (per-channel tables, AVX-512 VBMI).
    int8_t block_a[XCHUNK * 16] __attribute__((aligned(64))), block_b[XCHUNK * 16] __attribute__((aligned(64)));
    const int blocked = p->lut && p->lut_stride && p->lut_block;
    group_consts g;
    for (size_t y = p->y0; y < p->y1; y++) {
        int8_t *orow = p->out + (ptrdiff_t)y * p->out_row_stride;
        for (size_t x0 = 0; x0 < p->out_w; x0 += XCHUNK) {
            const size_t nx = p->out_w - x0 < XCHUNK ? p->out_w - x0 : XCHUNK;
            mv_dw_row_taps(p, y, x0, nx, taps);
            for (size_t gi = 0; gi < groups; gi++) {
                const size_t c0 = gi * 32, nv = C - c0 < 32 ? C - c0 : 32;
                const int8_t *w = packed + gi * 384;
                // At most 16 channels: lane 0 of the group (channels 4k + j) in every 128-bit lane.
                const int quarter = nv <= 16;
#define BCAST(ptr) (quarter ? _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(ptr))) \
                            : _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(ptr))))
                for (int k = 0; k < 12; k++) g.w[k] = BCAST(w + 32 * k);
                g.all_pos = 1;
                g.any_neg = 0;
                for (int k = 0; k < 4; k++) {
                    const size_t s0 = c0 + 8 * (size_t)k;
                    g.bias[k] = BCAST(p->bias + s0);
                    g.q[k] = rq16_prepare(BCAST(p->multiplier + s0), BCAST(p->shift + s0));
#undef BCAST
                    // Slot 8k + 4L + j holds channel 16L + 4k + j; padding slots do not count.
                    for (int l = 0; l < 8; l++) {
                        if ((size_t)(16 * (l / 4) + 4 * k + l % 4) >= nv) continue;
                        const int32_t s = p->shift[s0 + (size_t)l];
                        if (s < 1) g.all_pos = 0;
                        if (s < 0) g.any_neg = 1;
                    }
                }
                int8_t *o = orow + (ptrdiff_t)x0 * p->out_pixel_stride + c0;
                if (quarter) dw_group16(p, taps, nx, o, c0, nv, &g, zp, lo, hi, blocked ? block_a : NULL);
                else if (nv == 32 && blocked) dw_group_blocked(p, taps, nx, o, c0, &g, zp, lo, hi, block_a, block_b);
                else if (nv == 32) dw_group(p, taps, nx, o, c0, 1, (__mmask32)0xFFFFFFFFu, 32, &g, zp, lo, hi);
                else dw_group(p, taps, nx, o, c0, 0, (__mmask32)((1u << nv) - 1), nv, &g, zp, lo, hi);
            }
        }
    }
}

#else
void mv_dw3x3_avx512(const mv_dw_args *p) { (void)p; __builtin_trap(); }
#endif
