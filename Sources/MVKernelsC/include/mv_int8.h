// Int8 GEMM and depthwise-convolution inner loops, one C file per ISA (gemm_avx2.c,
// gemm_avx512vnni.c, gemm_neon.c, gemm_neondot.c, dwconv_avx2.c, dwconv_avx512.c, dwconv_neon.c). Every file
// compiles on x86-64 and AArch64; a function of the other architecture is a stub that traps, so the
// Swift side must only call what `mv_cpu_features()` reports (see KernelDispatch.swift).
//
// Semantics (bit-identical on every path; the Swift reference in MVKernels is the specification):
//   acc[m][n] = bias[n] + sum_k A[m][k] * B[n][k]  (- b_zero_point * sum_k A[m][k] when nonzero)
//   int8 output: requantise (Requantization.swift), + output zero point, clamp, optional LUT.
//   int32 output: acc as is.
#ifndef MV_INT8_H
#define MV_INT8_H
#include <stddef.h>
#include <stdint.h>

// Packed-weight layouts. B (N x K) is stored in blocks of NR output channels; inside a block,
// K is padded (zeros) to a multiple of KPAD and grouped by KR: element (n0 + j, k) of block n0/NR
// is at [(k / KR) * NR + j] * KR + k % KR (in elements of the ISA's element type).
#define MV_AVX2_MR 6
#define MV_AVX2_NR 16
#define MV_AVX2_KR 2      // int16 elements (weights pre-widened)
#define MV_AVX2_KPAD 2

#define MV_VNNI_MR 8
#define MV_VNNI_NR 16
#define MV_VNNI_KR 4      // int8; bias holds the -128 * sum_k B correction
#define MV_VNNI_KPAD 4

#define MV_NEON_MR 2
#define MV_NEON_NR 8
#define MV_NEON_KR 16     // int8
#define MV_NEON_KPAD 16

#define MV_NEONDOT_MR 4
#define MV_NEONDOT_NR 16
#define MV_NEONDOT_KR 4   // int8
#define MV_NEONDOT_KPAD 16

/// Flag: B contains the value -128 (the NEON smull/smlal path then avoids int16 pair sums).
#define MV_GEMM_B_HAS_MIN 1

typedef struct mv_gemm_args {
    const int8_t *a;            ///< A base; row m at a + a_offsets[m] or a + m * a_stride
    const int32_t *a_offsets;   ///< NULL for strided rows
    ptrdiff_t a_stride;
    void *c;                    ///< int8_t (requantised) or int32_t (raw) output base
    const int32_t *c_offsets;   ///< NULL for strided rows; in elements of the output type
    ptrdiff_t c_stride;         ///< in elements of the output type
    size_t m, k, n;
    const void *packed;         ///< packed B in the ISA's layout
    const int32_t *bias;        ///< [ceil(n / NR) * NR]
    const int32_t *multiplier;  ///< [ceil(n / NR) * NR]
    const int32_t *shift;       ///< [ceil(n / NR) * NR]
    int32_t b_zero_point;       ///< nonzero: acc -= b_zero_point * sum_k A[m][k]
    int32_t output_zero_point, clamp_min, clamp_max;
    const int8_t *lut;          ///< NULL or 256 entries indexed by out + 128
    size_t lut_stride;          ///< 0: one table; 256: one per column, column n's at lut + n * 256
    int32_t flags;              ///< MV_GEMM_*
    /// NULL, or (AVX-512 VNNI GEMM, per-column tables) `mv_channel_lut_block_vbmi`: the tables of
    /// whole 16-column tiles applied to blocks of 64 rows at once instead of by dword gathers.
    void (*lut_block)(int8_t *block, const int8_t *tables);
} mv_gemm_args;

void mv_gemm_q8_avx2(const mv_gemm_args *args);
void mv_gemm_i32_avx2(const mv_gemm_args *args);
void mv_gemm_q8_avx512vnni(const mv_gemm_args *args);
void mv_gemm_i32_avx512vnni(const mv_gemm_args *args);
void mv_gemm_q8_neon(const mv_gemm_args *args);
void mv_gemm_i32_neon(const mv_gemm_args *args);
void mv_gemm_q8_neondot(const mv_gemm_args *args);
void mv_gemm_i32_neondot(const mv_gemm_args *args);

// Depthwise 3x3, NHWC, dilation d >= 1 (taps at offsets -d, 0, +d), padding d, stride 1 or 2,
// output rows [y0, y1). A tap outside the input reads `pad` (>= round_up(channels, 16) bytes equal
// to the input zero point), so the folded bias stays exact. The ISA loops only read the tap
// pointers that mv_dw_row_taps (mv_int8_internal.h) computes, so dilation costs them nothing.
// Weights packed per group of 16 channels (zero-padded):
//   AVX2: int16 [group][5 tap pairs][2 halves][8 channels][2 taps] (tap 8 pairs with 0); half 0
//         holds channels 0-3, 8-11 of the group, half 1 channels 4-7, 12-15, and bias, multiplier
//         and shift of each group are stored in that order too;
//   NEON: int8 [group][9 taps][16 channels] (weights must lie in [-127, 127]), bias, multiplier and
//         shift in natural order.
// AVX-512 packs per group of 32 channels (zero-padded, 384 bytes), for `vpdpbusd`:
//   int8 [group][3 tap quads q][4 accumulators k][2 lanes L][4 channels j][4 taps i], tap 4q + i
//         (quad 2 holds tap 8 and three zeros), channel 16L + 4k + j of the group; bias,
//         multiplier and shift of that channel in slot 8k + 4L + j of the group's 32, and the bias
//         less 128 * sum_t w[t][c] (the kernel offsets the activations to unsigned).
typedef struct mv_dw_args {
    const int8_t *input;
    size_t in_h, in_w;
    ptrdiff_t in_pixel_stride, in_row_stride;
    int32_t stride;
    int32_t dilation;   ///< >= 1; padding equals it (output size = (in - 1) / stride + 1)
    const int8_t *pad;
    size_t channels;
    int8_t *out;
    size_t out_w, y0, y1;
    ptrdiff_t out_pixel_stride, out_row_stride;
    const void *packed;
    const int32_t *bias, *multiplier, *shift;  ///< [round_up(channels, 16); AVX-512: 32], layout order
    int32_t output_zero_point, clamp_min, clamp_max;
    const int8_t *lut;
    size_t lut_stride;  ///< 0: one table; 256: one per channel, channel c's at lut + c * 256
    /// NULL, or (AVX2 and AVX-512 loops, per-channel tables) `mv_channel_lut_block_vbmi`: each 16-channel
    /// group's tables applied to blocks of 64 pixels at once instead of byte by byte.
    void (*lut_block)(int8_t *block, const int8_t *tables);
} mv_dw_args;

void mv_dw3x3_avx2(const mv_dw_args *args);
/// Per-channel tables over 64 rows of 16 codes in place (1024 bytes, 64-byte aligned): code x in
/// column c becomes tables[c * 256 + x + 128]. Needs AVX-512 VBMI (channel_lut_avx512vbmi.c).
void mv_channel_lut_block_vbmi(int8_t *block, const int8_t *tables);
void mv_dw3x3_avx512(const mv_dw_args *args);
void mv_dw3x3_neon(const mv_dw_args *args);

// Exact integer Winograd F(2x2, 3x3) for a 3x3, stride 1, padding 1 convolution (NHWC), output
// rows [y0, y1), AVX2. With G' = 2G the transformed weights U = G' g G'^T are integers (|U| <= 9 *
// 128), the transformed inputs V = B^T d B too (|V| <= 4 * 128, both int16), and A^T (U . V) A is
// exactly 4 * sum_k w * x: int32 arithmetic wraps, but the result fits (Cin <= MV_WINO_MAX_CIN), so
// it is the direct convolution's accumulator bit for bit; bias, requantisation, clamp and table
// follow as in the GEMM (the same bias, multiplier and shift arrays, natural order).
// Padding taps read the input zero point, as im2col does.
#define MV_WINO_MAX_CIN 3584
#define MV_WINO_TILES 24  // 2x2-output tiles per block (a multiple of MV_AVX2_MR)

typedef struct mv_wino_args {
    const int8_t *input;
    size_t in_h, in_w;              ///< output size too (stride 1, padding 1)
    ptrdiff_t in_pixel_stride;      ///< >= cin
    size_t cin;
    int32_t input_zero_point;
    int8_t *out;
    ptrdiff_t out_pixel_stride;     ///< >= cout
    size_t cout, y0, y1;
    const int16_t *packed;          ///< [16 positions][round_up(cout, 16) * kp], AVX2 B layout
    size_t kp;                      ///< cin rounded up to even
    const int32_t *bias, *multiplier, *shift;  ///< [round_up(cout, 16)]
    int32_t output_zero_point, clamp_min, clamp_max;
    const int8_t *lut;
    size_t lut_stride;
    void *scratch;                  ///< mv_winograd3x3_scratch_bytes(cin, cout) bytes, 64-aligned
} mv_wino_args;

/// Scratch bytes of one mv_winograd3x3_avx2 call (a multiple of 64).
size_t mv_winograd3x3_scratch_bytes(size_t cin, size_t cout);
void mv_winograd3x3_avx2(const mv_wino_args *args);

/// Packs B (element (n, k) at src[n * n_stride + k * k_stride]) into the layout (nr, kr, K padded
/// to kp) at dst, which must be zeroed beforehand; writes the column sums to sums[0 ..< n]. Returns
/// 1 when some element is -128. `mv_pack_b_int8` is portable and packs every int8 layout;
/// `mv_pack_b_int16_avx2` packs the AVX2 layout (int16 elements, nr MV_AVX2_NR, kr MV_AVX2_KR) with
/// AVX2 loads; `mv_pack_b_int8_avx2` packs int8 layouts with the VNNI one (nr 16, kr 4) in AVX2 loads
/// and shuffles and any other through `mv_pack_b_int8`. The GEMM kernel table (KernelConfigs.swift)
/// holds the one each ISA's layout needs.
int mv_pack_b_int8(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                   size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums);
int mv_pack_b_int16_avx2(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                         size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums);
int mv_pack_b_int8_avx2(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                        size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums);
/// The VNNI layout on an AVX-512 VNNI CPU: row-major sources with K a multiple of 4 by dword
/// gathers (gemm_avx512vnni.c), anything else through `mv_pack_b_int8_avx2`.
int mv_pack_b_int8_avx512vnni(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                              size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums);

/// Writes a message to standard error (Swift 6 cannot touch `stderr` directly).
void mv_log_stderr(const char *message);

#endif
