// AVX2 requantisation helpers shared by gemm_avx2.c and dwconv_avx2.c (x86-64 only).
#ifndef MV_INT8_AVX2_H
#define MV_INT8_AVX2_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include "mv_int8.h"

#define TA __attribute__((target("avx2")))
#define TAI __attribute__((target("avx2"), always_inline)) static inline

/// Per-channel requantisation constants for 8 lanes. `all_pos` (every shift >= 1, the common case)
/// selects the shorter exact form of rq_apply, with the rounding terms of both roundings in
/// round_even / round_odd (64-bit, for the even / odd lanes).
typedef struct { __m256i mult, mult_odd, ls, rs1, rbit, round_even, round_odd; int any_neg, all_pos; } rq_consts;

TAI rq_consts rq_prepare(const int32_t *mult, const int32_t *shift) {
    rq_consts q;
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
    const __m256i s = _mm256_loadu_si256((const __m256i *)shift);
    q.mult = _mm256_loadu_si256((const __m256i *)mult);
    q.mult_odd = _mm256_shuffle_epi32(q.mult, 0xF5);  // odd dwords into the even slots
    q.ls = _mm256_max_epi32(_mm256_sub_epi32(zero, s), zero);
    q.rs1 = _mm256_max_epi32(_mm256_sub_epi32(s, one), zero);
    q.rbit = _mm256_and_si256(_mm256_cmpgt_epi32(s, zero), one);
    q.any_neg = _mm256_movemask_ps(_mm256_castsi256_ps(s)) != 0;
    q.all_pos = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(one, s))) == 0;
    // 2^30 + 2^(30 + min(s, 32)) per lane: shifts >= 32 give 0 either way (see rq_apply), and the
    // clamp keeps the sum below 2^63.
    const __m256i sc = _mm256_min_epi32(s, _mm256_set1_epi32(32));
    const __m256i r30 = _mm256_set1_epi64x((int64_t)1 << 30);
    q.round_even = _mm256_add_epi64(r30, _mm256_sllv_epi64(r30, _mm256_and_si256(sc, _mm256_set1_epi64x(0xFFFFFFFF))));
    q.round_odd = _mm256_add_epi64(r30, _mm256_sllv_epi64(r30, _mm256_srli_epi64(sc, 32)));
    return q;
}

/// z = requantize(acc) for 8 lanes (before the output zero point).
TAI __m256i rq_apply(__m256i acc, const rq_consts *q) {
    if (q->all_pos) {
        // For s >= 1 the two roundings fold into one: with P = acc * mult (exact in 64 bits),
        //   z = floor((floor((P + 2^30) / 2^31) + 2^(s-1)) / 2^s) = floor((P + 2^30 + 2^(30+s)) / 2^(31+s))
        //     = floor(hi / 2^(s-1)),  hi = floor((P + 2^30 + 2^(30+s)) / 2^32) = the high dword (|hi| < 2^31).
        // For s >= 32 the reference gives 0; so does this (round term 2^30 + 2^62 > |P| makes hi > 0,
        // and srav by >= 31 leaves 0).
        const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(acc, q->mult), q->round_even);
        const __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_shuffle_epi32(acc, 0xF5), q->mult_odd), q->round_odd);
        const __m256i hi = _mm256_blend_epi32(_mm256_shuffle_epi32(pe, 0xF5), po, 0xAA);
        return _mm256_srav_epi32(hi, q->rs1);
    }
    __m256i x = acc;
    if (q->any_neg) {
        // Saturating left shift: where shifting back does not restore acc, saturate.
        const __m256i sh = _mm256_sllv_epi32(acc, q->ls);
        const __m256i back = _mm256_srav_epi32(sh, q->ls);
        const __m256i ovf = _mm256_xor_si256(_mm256_cmpeq_epi32(back, acc), _mm256_set1_epi32(-1));
        const __m256i sat = _mm256_xor_si256(_mm256_srai_epi32(acc, 31), _mm256_set1_epi32(INT32_MAX));
        x = _mm256_blendv_epi8(sh, sat, ovf);
    }
    const __m256i rnd = _mm256_set1_epi64x((int64_t)1 << 30);
    const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(x, q->mult), rnd);
    const __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_shuffle_epi32(x, 0xF5), q->mult_odd), rnd);
    // Bits 31..62 of each 64-bit product: low dword of pe >> 31, high dword of po << 1.
    const __m256i y = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(po, 1), 0xAA);
    // Rounding right shift by s without overflow: t = y >> (s - 1), z = (t + 1) >> 1 (s >= 1;
    // |y| <= 2^31 - 2 so t + 1 cannot overflow); rbit = 0 makes it the identity for s = 0.
    const __m256i t = _mm256_srav_epi32(y, q->rs1);
    return _mm256_srav_epi32(_mm256_add_epi32(t, q->rbit), q->rbit);
}

/// Stores 16 int8 codes (columns col0 ..< col0 + 16) through their activation table(s), taking the
/// codes straight from the register (storing them and reading them back cost a round trip per
/// 16 bytes, and an out-of-line call, in the GEMM and depthwise epilogues).
TAI void mv_store16_lut_avx2(int8_t *dst, __m128i codes, const int8_t *lut, size_t stride, size_t col0) {
    const uint64_t w0 = (uint64_t)_mm_cvtsi128_si64(codes), w1 = (uint64_t)_mm_extract_epi64(codes, 1);
    if (stride == 0) {
        mv_apply_lut8_word(dst, w0, lut, 0);
        mv_apply_lut8_word(dst + 8, w1, lut, 0);
    } else {
        const int8_t *t = lut + col0 * 256;
        mv_apply_lut8_word(dst, w0, t, 256);
        mv_apply_lut8_word(dst + 8, w1, t + 8 * 256, 256);
    }
}

/// Stores 16 int8 codes, through the activation table(s) when there are any.
TAI void mv_store16_avx2(int8_t *dst, __m128i codes, const int8_t *lut, size_t stride, size_t col0) {
    if (lut) mv_store16_lut_avx2(dst, codes, lut, stride, col0);
    else _mm_storeu_si128((__m128i *)dst, codes);
}

/// The GEMM's K loop (gemm_avx2.c, winograd_avx2.c): an MV_AVX2_MR x 16 tile of int32 accumulators
/// over an int16 A panel (row r at panel + r * kc) and a packed int16 B block (k-pairs of 16 columns).
/// acc[2r + h] += sum over kpairs of panel pairs x packed B pairs (row r of the panel at r * kc).
TAI void kloop(__m256i *acc, const int16_t *panel, size_t kc, const int16_t *b, size_t kpairs) {
    __m256i c[2 * MV_AVX2_MR];
    for (int i = 0; i < 2 * MV_AVX2_MR; i++) c[i] = acc[i];
    for (size_t i = 0; i < kpairs; i++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + i * 32));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + i * 32 + 16));
        for (int r = 0; r < MV_AVX2_MR; r++) {
            int32_t pr;
            memcpy(&pr, panel + r * kc + 2 * i, 4);
            const __m256i va = _mm256_set1_epi32(pr);
            c[2 * r] = _mm256_add_epi32(c[2 * r], _mm256_madd_epi16(va, b0));
            c[2 * r + 1] = _mm256_add_epi32(c[2 * r + 1], _mm256_madd_epi16(va, b1));
        }
    }
    for (int i = 0; i < 2 * MV_AVX2_MR; i++) acc[i] = c[i];
}

/// kloop for a last column block of at most 8 columns (N = 20, 24, 40, ...): only acc[2r], the
/// first 8 columns, so the block costs half a tile instead of a whole one.
TAI void kloop_half(__m256i *acc, const int16_t *panel, size_t kc, const int16_t *b, size_t kpairs) {
    __m256i c[MV_AVX2_MR];
    for (int r = 0; r < MV_AVX2_MR; r++) c[r] = acc[2 * r];
    for (size_t i = 0; i < kpairs; i++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + i * 32));
        for (int r = 0; r < MV_AVX2_MR; r++) {
            int32_t pr;
            memcpy(&pr, panel + r * kc + 2 * i, 4);
            c[r] = _mm256_add_epi32(c[r], _mm256_madd_epi16(_mm256_set1_epi32(pr), b0));
        }
    }
    for (int r = 0; r < MV_AVX2_MR; r++) acc[2 * r] = c[r];
}

/// The K loop of one column block of nv valid columns.
TAI void kloop_block(__m256i *acc, const int16_t *panel, size_t kc, const int16_t *b, size_t kpairs, size_t nv) {
    if (nv <= 8) kloop_half(acc, panel, kc, b, kpairs);
    else kloop(acc, panel, kc, b, kpairs);
}

#endif
