// Per-channel activation tables over a block of 64 pixels x 16 channels with AVX-512 VBMI, for
// the depthwise loop (dwconv_avx2.c), whose channel groups produce exactly such blocks: the block
// is transposed so that each register holds one channel's 64 codes (four vpermt2b stages), each
// register looks up its channel's 256-entry table with two vpermi2b (entries 0-127 and 128-255)
// and a blend on the index's top bit, and the block is transposed back. About 0.4 instructions
// per output, where one byte lookup each costs about 4 (index extraction, load, store), and the
// same bytes: a table entry is a table entry, whatever reads it.
#include "mv_int8_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TB __attribute__((target("avx512f,avx512bw,avx512vbmi")))

// Stage s (0-3) of the forward transpose merges registers holding 64/C rows of C = 16 >> s
// channels pairwise into two holding twice the rows and half the channels (fwd[s][0] the lower
// channels, fwd[s][1] the upper); inv[s] undoes it (inv[s][0] the first register of the pair,
// inv[s][1] the second). Generated and checked by simulating the stages on (row, channel) labels.
static const uint8_t mv_lut_fwd[4][2][64] __attribute__((aligned(64))) = {
    {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23, 32, 33, 34, 35, 36, 37, 38, 39, 48, 49, 50, 51, 52, 53, 54, 55, 64, 65, 66, 67, 68, 69, 70, 71, 80, 81, 82, 83, 84, 85, 86, 87, 96, 97, 98, 99, 100, 101, 102, 103, 112, 113, 114, 115, 116, 117, 118, 119},
     {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31, 40, 41, 42, 43, 44, 45, 46, 47, 56, 57, 58, 59, 60, 61, 62, 63, 72, 73, 74, 75, 76, 77, 78, 79, 88, 89, 90, 91, 92, 93, 94, 95, 104, 105, 106, 107, 108, 109, 110, 111, 120, 121, 122, 123, 124, 125, 126, 127}},
    {{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27, 32, 33, 34, 35, 40, 41, 42, 43, 48, 49, 50, 51, 56, 57, 58, 59, 64, 65, 66, 67, 72, 73, 74, 75, 80, 81, 82, 83, 88, 89, 90, 91, 96, 97, 98, 99, 104, 105, 106, 107, 112, 113, 114, 115, 120, 121, 122, 123},
     {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31, 36, 37, 38, 39, 44, 45, 46, 47, 52, 53, 54, 55, 60, 61, 62, 63, 68, 69, 70, 71, 76, 77, 78, 79, 84, 85, 86, 87, 92, 93, 94, 95, 100, 101, 102, 103, 108, 109, 110, 111, 116, 117, 118, 119, 124, 125, 126, 127}},
    {{0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29, 32, 33, 36, 37, 40, 41, 44, 45, 48, 49, 52, 53, 56, 57, 60, 61, 64, 65, 68, 69, 72, 73, 76, 77, 80, 81, 84, 85, 88, 89, 92, 93, 96, 97, 100, 101, 104, 105, 108, 109, 112, 113, 116, 117, 120, 121, 124, 125},
     {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31, 34, 35, 38, 39, 42, 43, 46, 47, 50, 51, 54, 55, 58, 59, 62, 63, 66, 67, 70, 71, 74, 75, 78, 79, 82, 83, 86, 87, 90, 91, 94, 95, 98, 99, 102, 103, 106, 107, 110, 111, 114, 115, 118, 119, 122, 123, 126, 127}},
    {{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 62, 64, 66, 68, 70, 72, 74, 76, 78, 80, 82, 84, 86, 88, 90, 92, 94, 96, 98, 100, 102, 104, 106, 108, 110, 112, 114, 116, 118, 120, 122, 124, 126},
     {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63, 65, 67, 69, 71, 73, 75, 77, 79, 81, 83, 85, 87, 89, 91, 93, 95, 97, 99, 101, 103, 105, 107, 109, 111, 113, 115, 117, 119, 121, 123, 125, 127}},
};
static const uint8_t mv_lut_inv[4][2][64] __attribute__((aligned(64))) = {
    {{0, 1, 2, 3, 4, 5, 6, 7, 64, 65, 66, 67, 68, 69, 70, 71, 8, 9, 10, 11, 12, 13, 14, 15, 72, 73, 74, 75, 76, 77, 78, 79, 16, 17, 18, 19, 20, 21, 22, 23, 80, 81, 82, 83, 84, 85, 86, 87, 24, 25, 26, 27, 28, 29, 30, 31, 88, 89, 90, 91, 92, 93, 94, 95},
     {32, 33, 34, 35, 36, 37, 38, 39, 96, 97, 98, 99, 100, 101, 102, 103, 40, 41, 42, 43, 44, 45, 46, 47, 104, 105, 106, 107, 108, 109, 110, 111, 48, 49, 50, 51, 52, 53, 54, 55, 112, 113, 114, 115, 116, 117, 118, 119, 56, 57, 58, 59, 60, 61, 62, 63, 120, 121, 122, 123, 124, 125, 126, 127}},
    {{0, 1, 2, 3, 64, 65, 66, 67, 4, 5, 6, 7, 68, 69, 70, 71, 8, 9, 10, 11, 72, 73, 74, 75, 12, 13, 14, 15, 76, 77, 78, 79, 16, 17, 18, 19, 80, 81, 82, 83, 20, 21, 22, 23, 84, 85, 86, 87, 24, 25, 26, 27, 88, 89, 90, 91, 28, 29, 30, 31, 92, 93, 94, 95},
     {32, 33, 34, 35, 96, 97, 98, 99, 36, 37, 38, 39, 100, 101, 102, 103, 40, 41, 42, 43, 104, 105, 106, 107, 44, 45, 46, 47, 108, 109, 110, 111, 48, 49, 50, 51, 112, 113, 114, 115, 52, 53, 54, 55, 116, 117, 118, 119, 56, 57, 58, 59, 120, 121, 122, 123, 60, 61, 62, 63, 124, 125, 126, 127}},
    {{0, 1, 64, 65, 2, 3, 66, 67, 4, 5, 68, 69, 6, 7, 70, 71, 8, 9, 72, 73, 10, 11, 74, 75, 12, 13, 76, 77, 14, 15, 78, 79, 16, 17, 80, 81, 18, 19, 82, 83, 20, 21, 84, 85, 22, 23, 86, 87, 24, 25, 88, 89, 26, 27, 90, 91, 28, 29, 92, 93, 30, 31, 94, 95},
     {32, 33, 96, 97, 34, 35, 98, 99, 36, 37, 100, 101, 38, 39, 102, 103, 40, 41, 104, 105, 42, 43, 106, 107, 44, 45, 108, 109, 46, 47, 110, 111, 48, 49, 112, 113, 50, 51, 114, 115, 52, 53, 116, 117, 54, 55, 118, 119, 56, 57, 120, 121, 58, 59, 122, 123, 60, 61, 124, 125, 62, 63, 126, 127}},
    {{0, 64, 1, 65, 2, 66, 3, 67, 4, 68, 5, 69, 6, 70, 7, 71, 8, 72, 9, 73, 10, 74, 11, 75, 12, 76, 13, 77, 14, 78, 15, 79, 16, 80, 17, 81, 18, 82, 19, 83, 20, 84, 21, 85, 22, 86, 23, 87, 24, 88, 25, 89, 26, 90, 27, 91, 28, 92, 29, 93, 30, 94, 31, 95},
     {32, 96, 33, 97, 34, 98, 35, 99, 36, 100, 37, 101, 38, 102, 39, 103, 40, 104, 41, 105, 42, 106, 43, 107, 44, 108, 45, 109, 46, 110, 47, 111, 48, 112, 49, 113, 50, 114, 51, 115, 52, 116, 53, 117, 54, 118, 55, 119, 56, 120, 57, 121, 58, 122, 59, 123, 60, 124, 61, 125, 62, 126, 63, 127}},
};

/// Forward stage s: registers of C = 16 >> s channels merged pairwise (x: row group g, y: row
/// group g + groups / 2, same channel slice h) into the lower and upper halves of the channels.
#define TBI __attribute__((target("avx512f,avx512bw,avx512vbmi"), always_inline)) static inline
TBI void forward_stage(const __m512i *in, __m512i *out, int s) {
    const int groups = 16 >> s, slices = 1 << s;
    const __m512i lo = _mm512_load_si512((const void *)mv_lut_fwd[s][0]), hi = _mm512_load_si512((const void *)mv_lut_fwd[s][1]);
#pragma clang loop unroll(full)
    for (int i = 0; i < 8; i++) {
        const int g = i / slices, h = i % slices;
        const __m512i x = in[g * slices + h], y = in[(g + groups / 2) * slices + h];
        out[g * 2 * slices + 2 * h] = _mm512_permutex2var_epi8(x, lo, y);
        out[g * 2 * slices + 2 * h + 1] = _mm512_permutex2var_epi8(x, hi, y);
    }
}

/// The inverse of forward_stage(s).
TBI void inverse_stage(const __m512i *in, __m512i *out, int s) {
    const int groups = 16 >> s, slices = 1 << s;
    const __m512i ix = _mm512_load_si512((const void *)mv_lut_inv[s][0]), iy = _mm512_load_si512((const void *)mv_lut_inv[s][1]);
#pragma clang loop unroll(full)
    for (int i = 0; i < 8; i++) {
        const int g = i / slices, h = i % slices;
        const __m512i l = in[g * 2 * slices + 2 * h], u = in[g * 2 * slices + 2 * h + 1];
        out[g * slices + h] = _mm512_permutex2var_epi8(l, ix, u);
        out[(g + groups / 2) * slices + h] = _mm512_permutex2var_epi8(l, iy, u);
    }
}

/// block: 64 rows of 16 int8 codes (1024 bytes, 64-byte aligned), rewritten in place as
/// tables[c * 256 + code + 128] for the code in column c.
TB void mv_channel_lut_block_vbmi(int8_t *block, const int8_t *tables) {
    __m512i v[16], w[16];
#pragma clang loop unroll(full)
    for (int j = 0; j < 16; j++) v[j] = _mm512_load_si512((const void *)(block + 64 * j));
    // (groups / 2) * slices = 8 pairs at every stage; the arrays alternate so nothing is copied.
    forward_stage(v, w, 0);
    forward_stage(w, v, 1);
    forward_stage(v, w, 2);
    forward_stage(w, v, 3);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
#pragma clang loop unroll(full)
    for (int c = 0; c < 16; c++) {
        const int8_t *t = tables + 256 * c;
        const __m512i u = _mm512_xor_si512(v[c], flip);  // code + 128
        const __m512i low = _mm512_permutex2var_epi8(_mm512_loadu_si512((const void *)t), u, _mm512_loadu_si512((const void *)(t + 64)));
        const __m512i high = _mm512_permutex2var_epi8(_mm512_loadu_si512((const void *)(t + 128)), u,
                                                      _mm512_loadu_si512((const void *)(t + 192)));
        v[c] = _mm512_mask_blend_epi8(_mm512_movepi8_mask(u), low, high);
    }
    inverse_stage(v, w, 3);
    inverse_stage(w, v, 2);
    inverse_stage(v, w, 1);
    inverse_stage(w, v, 0);
#pragma clang loop unroll(full)
    for (int j = 0; j < 16; j++) _mm512_store_si512((void *)(block + 64 * j), v[j]);
}

#else
void mv_channel_lut_block_vbmi(int8_t *block, const int8_t *tables) {
    (void)block; (void)tables;
    __builtin_trap();
}
#endif
