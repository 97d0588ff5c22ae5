// AVX-512 setup shared by gemm_avx512vnni.c and dwconv_avx512.c (x86-64 only): the target
// attributes, or, for the cross-ISA harness (MV_SIMDE_EMULATION), SIMDe's emulation of the
// intrinsics plus shims for what SIMDe lacks, so AVX-512 code is also tested on hosts without it.
#ifndef MV_INT8_AVX512_H
#define MV_INT8_AVX512_H
#include <stdint.h>
#include <string.h>

#if defined(MV_SIMDE_EMULATION)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define TV
#define TVI static inline
// Test-only shims for what SIMDe lacks, with Intel's semantics (counts > 31 fill with the sign).
#define __mmask16 simde__mmask16
static inline simde__m512i mv_emu_srav_epi32(simde__m512i a, simde__m512i c) {
    int32_t x[16], s[16];
    simde_mm512_storeu_si512(x, a);
    simde_mm512_storeu_si512(s, c);
    for (int i = 0; i < 16; i++) x[i] = (uint32_t)s[i] > 31 ? (x[i] < 0 ? -1 : 0) : x[i] >> s[i];
    return simde_mm512_loadu_si512(x);
}
#define _mm512_srav_epi32 mv_emu_srav_epi32
#define _mm512_srai_epi32(a, imm) mv_emu_srav_epi32((a), simde_mm512_set1_epi32(imm))
static inline simde__m128i mv_emu_cvtepi32_epi8(simde__m512i a) {
    int32_t x[16];
    int8_t y[16];
    simde_mm512_storeu_si512(x, a);
    for (int i = 0; i < 16; i++) y[i] = (int8_t)x[i];
    return simde_mm_loadu_si128(y);
}
#define _mm512_cvtepi32_epi8 mv_emu_cvtepi32_epi8
static inline simde__mmask16 mv_emu_cmp_mask(simde__m512i a, simde__m512i b, int lt) {
    int32_t x[16], y[16];
    simde_mm512_storeu_si512(x, a);
    simde_mm512_storeu_si512(y, b);
    simde__mmask16 m = 0;
    for (int i = 0; i < 16; i++) if (lt ? x[i] < y[i] : x[i] != y[i]) m |= (simde__mmask16)(1u << i);
    return m;
}
#define _mm512_cmplt_epi32_mask(a, b) mv_emu_cmp_mask((a), (b), 1)
#define _MM_PERM_ENUM int
static inline simde__m512i mv_emu_shuffle_epi32(simde__m512i a, int imm) {
    int32_t x[16], y[16];
    simde_mm512_storeu_si512(x, a);
    for (int i = 0; i < 16; i++) y[i] = x[(i & ~3) + ((imm >> (2 * (i & 3))) & 3)];
    return simde_mm512_loadu_si512(y);
}
#define _mm512_shuffle_epi32 mv_emu_shuffle_epi32
#define _mm512_cmpneq_epi32_mask(a, b) mv_emu_cmp_mask((a), (b), 0)
static inline simde__m512i mv_emu_mask_i32gather_epi32(simde__m512i src, simde__mmask16 k, simde__m512i idx,
                                                       const void *base, int scale) {
    int32_t x[16], i[16];
    simde_mm512_storeu_si512(x, src);
    simde_mm512_storeu_si512(i, idx);
    for (int j = 0; j < 16; j++)
        if (k & (1u << j)) memcpy(&x[j], (const char *)base + (ptrdiff_t)i[j] * scale, 4);
    return simde_mm512_loadu_si512(x);
}
#define _mm512_mask_i32gather_epi32 mv_emu_mask_i32gather_epi32
#define __mmask64 simde__mmask64
static inline simde__m512i mv_emu_maskz_loadu_epi8(simde__mmask64 k, const void *p) {
    int8_t x[64] = {0};
    for (int i = 0; i < 64; i++) if (k & ((simde__mmask64)1 << i)) x[i] = ((const int8_t *)p)[i];
    return simde_mm512_loadu_si512(x);
}
#define _mm512_maskz_loadu_epi8 mv_emu_maskz_loadu_epi8
static inline void mv_emu_mask_storeu_epi8(void *p, simde__mmask64 k, simde__m512i a) {
    int8_t x[64];
    simde_mm512_storeu_si512(x, a);
    for (int i = 0; i < 64; i++) if (k & ((simde__mmask64)1 << i)) ((int8_t *)p)[i] = x[i];
}
#define _mm512_mask_storeu_epi8 mv_emu_mask_storeu_epi8
static inline void mv_emu_mask_storeu_epi32(void *p, simde__mmask16 k, simde__m512i a) {
    int32_t x[16];
    simde_mm512_storeu_si512(x, a);
    for (int i = 0; i < 16; i++) if (k & (1u << i)) memcpy((char *)p + 4 * i, &x[i], 4);
}
#define _mm512_mask_storeu_epi32 mv_emu_mask_storeu_epi32
// Byte-masked loads and stores of 16 and 32 bytes (dwconv_avx512.c's channel tails): bytes outside
// the mask are neither read nor written.
#define __mmask32 simde__mmask32
static inline simde__m128i mv_emu_maskz_loadu_epi8_128(simde__mmask16 k, const void *p) {
    int8_t x[16] = {0};
    for (int i = 0; i < 16; i++) if ((k >> i) & 1) x[i] = ((const int8_t *)p)[i];
    return simde_mm_loadu_si128(x);
}
#define _mm_maskz_loadu_epi8 mv_emu_maskz_loadu_epi8_128
static inline simde__m256i mv_emu_maskz_loadu_epi8_256(simde__mmask32 k, const void *p) {
    int8_t x[32] = {0};
    for (int i = 0; i < 32; i++) if ((k >> i) & 1) x[i] = ((const int8_t *)p)[i];
    return simde_mm256_loadu_si256(x);
}
#define _mm256_maskz_loadu_epi8 mv_emu_maskz_loadu_epi8_256
static inline void mv_emu_mask_storeu_epi8_256(void *p, simde__mmask32 k, simde__m256i a) {
    int8_t x[32];
    simde_mm256_storeu_si256(x, a);
    for (int i = 0; i < 32; i++) if ((k >> i) & 1) ((int8_t *)p)[i] = x[i];
}
#define _mm256_mask_storeu_epi8 mv_emu_mask_storeu_epi8_256
#else
#include <immintrin.h>
#define TV __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))
#define TVI __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) static inline
#endif

#endif
