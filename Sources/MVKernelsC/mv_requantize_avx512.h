// AVX-512 requantisation of 16 int32 lanes (requantize() of Requantization.swift, then the output
// zero point and clamp), shared by gemm_avx512vnni.c and nonlinear_avx512.c. The includer defines
// MV_RQ512 as the function attributes its build needs (the AVX-512 target, or nothing under the
// tests' SIMDe emulation) after making the intrinsics available.
#ifndef MV_REQUANTIZE_AVX512_H
#define MV_REQUANTIZE_AVX512_H

/// requantize() for 16 lanes; returns z clamped to [lo - zp, hi - zp] plus zp (int32 lanes in
/// [clamp_min, clamp_max], within [-128, 127]).
MV_RQ512 __m512i rq16(__m512i acc, __m512i mult, __m512i shift, __m512i lo, __m512i hi, __m512i zp) {
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    __m512i x = acc;
    const __mmask16 neg = _mm512_cmplt_epi32_mask(shift, zero);
    if (neg) {
        const __m512i ls = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
        const __m512i sh = _mm512_sllv_epi32(acc, ls);
        const __mmask16 ovf = _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(sh, ls), acc);
        const __m512i sat = _mm512_xor_si512(_mm512_srai_epi32(acc, 31), _mm512_set1_epi32(INT32_MAX));
        x = _mm512_mask_blend_epi32(ovf, sh, sat);
    }
    const __m512i rnd = _mm512_set1_epi64((int64_t)1 << 30);
    const __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(x, mult), rnd);
    const __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_shuffle_epi32(x, (_MM_PERM_ENUM)0xF5), _mm512_shuffle_epi32(mult, (_MM_PERM_ENUM)0xF5)), rnd);
    const __m512i y = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(pe, 31), _mm512_slli_epi64(po, 1));
    // Rounding right shift: t = y >> (s - 1), z = (t + 1) >> 1 for s >= 1 (no overflow as
    // |y| <= 2^31 - 2); rbit = 0 leaves y unchanged for s <= 0.
    const __m512i rs1 = _mm512_max_epi32(_mm512_sub_epi32(shift, one), zero);
    const __m512i rbit = _mm512_min_epi32(_mm512_max_epi32(shift, zero), one);
    const __m512i t = _mm512_srav_epi32(y, rs1);
    __m512i z = _mm512_srav_epi32(_mm512_add_epi32(t, rbit), rbit);
    return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(z, lo), hi), zp);
}

/// rq16 for a tile whose shifts are all >= 1 (per-channel requantisation almost always is): the
/// two roundings fold into one, as in the AVX2 rq_apply. With P = acc * mult (exact in 64 bits),
///   z = floor((floor((P + 2^30) / 2^31) + 2^(s-1)) / 2^s) = floor((P + 2^30 + 2^(30+s)) / 2^(31+s)),
/// the high dword of P + 2^30 + 2^(30+s) shifted right by s - 1 (|high dword| < 2^31). For s >= 32
/// the reference gives 0, and so does this: the round term 2^30 + 2^62 > |P| makes the high dword
/// positive and smaller than 2^31, and srav by >= 31 leaves 0.
typedef struct { __m512i mult_odd, round_even, round_odd, rs1; } rq16_positive;

MV_RQ512 rq16_positive rq16_positive_setup(__m512i mult, __m512i shift) {
    rq16_positive q;
    const __m512i sc = _mm512_min_epi32(shift, _mm512_set1_epi32(32));
    const __m512i r30 = _mm512_set1_epi64((int64_t)1 << 30);
    q.mult_odd = _mm512_srli_epi64(mult, 32);
    q.round_even = _mm512_add_epi64(r30, _mm512_sllv_epi64(r30, _mm512_and_si512(sc, _mm512_set1_epi64(0xFFFFFFFF))));
    q.round_odd = _mm512_add_epi64(r30, _mm512_sllv_epi64(r30, _mm512_srli_epi64(sc, 32)));
    q.rs1 = _mm512_sub_epi32(shift, _mm512_set1_epi32(1));
    return q;
}

/// The requantised values of rq16_positive_apply before the zero point and the clamp.
MV_RQ512 __m512i rq16_positive_unclamped(__m512i acc, __m512i mult, const rq16_positive *q) {
    // The odd dwords move down by vpshufd, not by 64-bit shifts: on AVX-512 hosts the multiplies,
    // the shifts and vpdpbusd all issue on one port, which bounds the small-K GEMM tiles, and the
    // shuffles go to another (vpmuldq reads only each quadword's low dword, whatever is above).
    const __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(acc, mult), q->round_even);
    const __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_shuffle_epi32(acc, (_MM_PERM_ENUM)0xF5), q->mult_odd), q->round_odd);
    return _mm512_srav_epi32(_mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_shuffle_epi32(pe, (_MM_PERM_ENUM)0xF5), po), q->rs1);
}

MV_RQ512 __m512i rq16_positive_apply(__m512i acc, __m512i mult, const rq16_positive *q, __m512i lo, __m512i hi, __m512i zp) {
    const __m512i z = rq16_positive_unclamped(acc, mult, q);
    return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(z, lo), hi), zp);
}

#endif
