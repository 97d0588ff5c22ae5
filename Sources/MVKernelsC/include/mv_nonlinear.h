// Integer non-linear kernels (softmax, LayerNorm, add): AVX2 rows in nonlinear_avx2.c and NEON
// rows in nonlinear_neon.c. The rule for functions absent on an architecture, as in mv_int8.h:
// every function is declared on every architecture, and the file of the other architecture
// defines it as a stub that traps. So the Swift side holds them all in its kernel tables
// (KernelConfigs.swift) without `#if arch`, and calls one only for an ISA that
// `KernelISA.isSupported`. Every function is bit-exact with the Swift reference in MVKernels
// (IntegerSoftmax.swift, IntegerLayerNorm.swift, AddInt8.swift hold the specification).
#ifndef MV_NONLINEAR_H
#define MV_NONLINEAR_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t exp_pre_shift;       // truncating right shift of the difference (0...31)
    int32_t exp_left_shift;      // left shift of the difference (0...15); one of the two shifts is 0
    uint32_t exp_multiplier;     // 32769...65535: u = (min(d << a >> r, 65535) * M) >> 16, Q11 log2 units
    uint32_t output_multiplier;  // 1/output_scale = output_multiplier * 2^-output_shift
    int32_t output_shift;
    int32_t output_zero_point;
} mv_softmax_params;

/// Softmax of `rows` int32 rows of length n (1...2^19; row strides in elements) into int8 rows.
/// `scratch` holds IntegerSoftmax.scratchCount(n) int32 values: four rows' e as uint16, each
/// rounded up to 32.
void mv_softmax_rows_avx2(const int32_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                          int32_t n, int32_t rows, const mv_softmax_params *p, int32_t *scratch);
void mv_softmax_rows_neon(const int32_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                          int32_t n, int32_t rows, const mv_softmax_params *p, int32_t *scratch);
/// AVX-512 (F, BW) rows: x86-64 with AVX-512BW, a trapping stub elsewhere.
void mv_softmax_rows_avx512(const int32_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                            int32_t n, int32_t rows, const mv_softmax_params *p, int32_t *scratch);

/// IntegerLayerNorm.Parameters (IntegerLayerNorm.swift holds the specification).
typedef struct {
    int32_t channels;
    int32_t variance_shift;             // 2j
    int32_t norm_shift;                 // q
    uint64_t epsilon_term;              // E
    int32_t output_zero_point;
    const int32_t *gamma_multipliers;   // [channels], |G| <= 32767
    const int32_t *shifts;              // [channels], 1...30
    const int32_t *biases;              // [channels], |B| <= 2^30
    const uint32_t *rsqrt_seeds;        // [192], IntegerLayerNorm.reciprocalSquareRootSeeds
} mv_layernorm_params;

/// LayerNorm of `tokens` int8 tokens (channels contiguous; token strides in elements).
void mv_layernorm_rows_avx2(const int8_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                            int32_t tokens, const mv_layernorm_params *p);
void mv_layernorm_rows_neon(const int8_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                            int32_t tokens, const mv_layernorm_params *p);
/// AVX-512 (F, BW) rows: x86-64 with AVX-512BW, a trapping stub elsewhere.
void mv_layernorm_rows_avx512(const int8_t *in, ptrdiff_t in_stride, int8_t *out, ptrdiff_t out_stride,
                              int32_t tokens, const mv_layernorm_params *p);

/// AddInt8.Parameters: out = clamp((((a − za)·ma + (b − zb)·mb + 2^(shift−1)) >> shift) + zy),
/// multipliers in 0…32767, shift in 1…22.
typedef struct {
    int32_t zero_point_a, multiplier_a;
    int32_t zero_point_b, multiplier_b;
    int32_t shift;
    int32_t output_zero_point, clamp_min, clamp_max;
} mv_add_params;

/// out[r][i] = a[r][i] + b[r][i] (int8, different quantisations), `rows` rows of `columns`.
void mv_add_rows_avx2(const int8_t *a, ptrdiff_t a_stride, const int8_t *b, ptrdiff_t b_stride,
                      int8_t *out, ptrdiff_t out_stride, int32_t columns, int32_t rows, const mv_add_params *p);
void mv_add_rows_neon(const int8_t *a, ptrdiff_t a_stride, const int8_t *b, ptrdiff_t b_stride,
                      int8_t *out, ptrdiff_t out_stride, int32_t columns, int32_t rows, const mv_add_params *p);
/// AVX-512 (F, BW) rows: x86-64 with AVX-512BW, a trapping stub elsewhere.
void mv_add_rows_avx512(const int8_t *a, ptrdiff_t a_stride, const int8_t *b, ptrdiff_t b_stride,
                        int8_t *out, ptrdiff_t out_stride, int32_t columns, int32_t rows, const mv_add_params *p);


#endif
