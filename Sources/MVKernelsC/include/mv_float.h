// Float32 kernels for the reference (float) executor: GEMM on packed weights, depthwise 3x3,
// element-wise activations. Not bit-exact across ISAs (they need not be: the int8 path is).
#ifndef MV_FLOAT_H
#define MV_FLOAT_H
#include <stddef.h>
#include <stdint.h>

/// Column-block width of packed float GEMM weights.
#define MV_SGEMM_NR 16

/// C[m][n] = bias[n] + sum_k A[m][k] * B[n][k] for n < N, with B packed as
/// ceil(N/16) panels of [K][16] floats (zero-padded), bias padded to a multiple of 16.
/// use_avx2: 1 to run the AVX2+FMA build (caller checks the CPU), 0 for the generic build.
/// act: activation fused into the epilogue (0 none, 1 SiLU, 2 ReLU, 3 ReLU6).
void mv_sgemm(int use_avx2, const float *a, size_t lda, size_t m, size_t k,
              const float *packed_b, const float *bias, size_t n, float *c, size_t ldc, int act);

/// Depthwise 3x3, NHWC, dilation d >= 1 (taps at -d, 0, +d) with padding d, stride 1 or 2, for
/// output rows [y0, y1) of (h - 1) / stride + 1.
/// weights: [3][3][C] (tap-major, channel innermost), bias [C].
void mv_depthwise3x3_f32(int use_avx2, const float *in, size_t h, size_t w, size_t c,
                         const float *weights, const float *bias, int stride, int dilation,
                         float *out, size_t out_w, size_t y0, size_t y1, int act);

/// In-place activations over n floats. kind: 1 SiLU, 2 ReLU, 3 ReLU6, 4 GELU (erf).
void mv_activation_f32(int use_avx2, float *x, size_t n, int kind);

/// Row-wise softmax over `rows` rows of length n (stride ld), in place, with a scale applied
/// to the inputs first.
void mv_softmax_f32(int use_avx2, float *x, size_t rows, size_t n, size_t ld, float scale);

#endif
