// Float32 kernels of the reference executor. The same source is compiled twice: once for the
// baseline ISA and once with AVX2+FMA target attributes (x86-64 only); GCC/clang vector
// extensions lower to SSE, AVX2 or NEON as the target allows.
#include "MVKernelsC.h"
#include <math.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32), aligned(4)));

#define MR 6

// ---- GEMM microkernel: 6 rows x 16 columns, accumulators in registers -----------------------
#define SGEMM_BODY                                                                                 \
    for (size_t nb = 0; nb * 16 < n; nb++) {                                                       \
        const float *bp = packed_b + nb * k * 16;                                                  \
        v8f b0, b1;                                                                                \
        memcpy(&b0, bias + nb * 16, 32);                                                           \
        memcpy(&b1, bias + nb * 16 + 8, 32);                                                       \
        size_t cols = n - nb * 16 < 16 ? n - nb * 16 : 16;                                         \
        for (size_t m0 = 0; m0 < m; m0 += MR) {                                                    \
            size_t rows = m - m0 < MR ? m - m0 : MR;                                               \
            v8f acc[MR][2];                                                                        \
            for (int r = 0; r < MR; r++) { acc[r][0] = b0; acc[r][1] = b1; }                       \
            const float *ar[MR];                                                                   \
            for (size_t r = 0; r < MR; r++) ar[r] = a + (m0 + (r < rows ? r : rows - 1)) * lda;    \
            for (size_t kk = 0; kk < k; kk++) {                                                    \
                v8f w0, w1;                                                                        \
                memcpy(&w0, bp + kk * 16, 32);                                                     \
                memcpy(&w1, bp + kk * 16 + 8, 32);                                                 \
                for (int r = 0; r < MR; r++) {                                                     \
                    float s = ar[r][kk];                                                           \
                    acc[r][0] += s * w0;                                                           \
                    acc[r][1] += s * w1;                                                           \
                }                                                                                  \
            }                                                                                      \
            for (size_t r = 0; r < rows; r++) {                                                    \
                float *cr = c + (m0 + r) * ldc + nb * 16;                                          \
                if (cols == 16) {                                                                  \
                    memcpy(cr, &acc[r][0], 32);                                                    \
                    memcpy(cr + 8, &acc[r][1], 32);                                                \
                } else {                                                                           \
                    float tmp[16];                                                                 \
                    memcpy(tmp, &acc[r][0], 32);                                                   \
                    memcpy(tmp + 8, &acc[r][1], 32);                                               \
                    memcpy(cr, tmp, cols * sizeof(float));                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

static void sgemm_generic(const float *a, size_t lda, size_t m, size_t k, const float *packed_b,
                          const float *bias, size_t n, float *c, size_t ldc) {
    SGEMM_BODY
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void sgemm_avx2(const float *a, size_t lda, size_t m, size_t k,
                                                           const float *packed_b, const float *bias, size_t n,
                                                           float *c, size_t ldc) {
    SGEMM_BODY
}
#endif

void mv_sgemm(int use_avx2, const float *a, size_t lda, size_t m, size_t k, const float *packed_b,
              const float *bias, size_t n, float *c, size_t ldc) {
    if (m == 0 || n == 0) return;
#if defined(__x86_64__)
    if (use_avx2) { sgemm_avx2(a, lda, m, k, packed_b, bias, n, c, ldc); return; }
#endif
    (void)use_avx2;
    sgemm_generic(a, lda, m, k, packed_b, bias, n, c, ldc);
}

// ---- Depthwise 3x3 ---------------------------------------------------------------------------
#define DW_BODY                                                                                    \
    for (size_t y = y0; y < y1; y++) {                                                             \
        for (size_t x = 0; x < out_w; x++) {                                                       \
            float *o = out + (y * out_w + x) * c;                                                  \
            memcpy(o, bias, c * sizeof(float));                                                    \
            for (int dy = 0; dy < 3; dy++) {                                                       \
                long iy = (long)(y * stride) + dy - 1;                                             \
                if (iy < 0 || iy >= (long)h) continue;                                             \
                for (int dx = 0; dx < 3; dx++) {                                                   \
                    long ix = (long)(x * stride) + dx - 1;                                         \
                    if (ix < 0 || ix >= (long)w) continue;                                         \
                    const float *ip = in + ((size_t)iy * w + (size_t)ix) * c;                      \
                    const float *wp = weights + (size_t)(dy * 3 + dx) * c;                         \
                    for (size_t ch = 0; ch < c; ch++) o[ch] += ip[ch] * wp[ch];                    \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

static void dw_generic(const float *in, size_t h, size_t w, size_t c, const float *weights, const float *bias,
                       int stride, float *out, size_t out_w, size_t y0, size_t y1) {
    DW_BODY
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void dw_avx2(const float *in, size_t h, size_t w, size_t c,
                                                        const float *weights, const float *bias, int stride,
                                                        float *out, size_t out_w, size_t y0, size_t y1) {
    DW_BODY
}
#endif

void mv_depthwise3x3_f32(int use_avx2, const float *in, size_t h, size_t w, size_t c, const float *weights,
                         const float *bias, int stride, float *out, size_t out_w, size_t y0, size_t y1) {
#if defined(__x86_64__)
    if (use_avx2) { dw_avx2(in, h, w, c, weights, bias, stride, out, out_w, y0, y1); return; }
#endif
    (void)use_avx2;
    dw_generic(in, h, w, c, weights, bias, stride, out, out_w, y0, y1);
}

// ---- exp for activations and softmax ----------------------------------------------------------
// Cephes-style expf: range reduction by ln 2, degree-5 polynomial, relative error ~2e-7.
#define EXP_BODY(x)                                                                                \
    ({                                                                                             \
        float xc = (x) > 88.0f ? 88.0f : ((x) < -87.0f ? -87.0f : (x));                            \
        float fx = floorf(xc * 1.44269504088896341f + 0.5f);                                       \
        float r = xc - fx * 0.693359375f + fx * 2.12194440e-4f;                                    \
        float p = 1.9875691500e-4f;                                                                \
        p = p * r + 1.3981999507e-3f;                                                              \
        p = p * r + 8.3334519073e-3f;                                                              \
        p = p * r + 4.1665795894e-2f;                                                              \
        p = p * r + 1.6666665459e-1f;                                                              \
        p = p * r + 5.0000001201e-1f;                                                              \
        p = p * r * r + r + 1.0f;                                                                  \
        int e = (int)fx + 127;                                                                     \
        union { uint32_t u; float f; } bits;                                                       \
        bits.u = (uint32_t)e << 23;                                                                \
        p * bits.f;                                                                                \
    })

#define ACT_BODY                                                                                   \
    switch (kind) {                                                                                \
    case 1:                                                                                        \
        for (size_t i = 0; i < n; i++) { float v = x[i]; x[i] = v / (1.0f + EXP_BODY(-v)); }      \
        break;                                                                                     \
    case 2:                                                                                        \
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;                                 \
        break;                                                                                     \
    case 3:                                                                                        \
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? (x[i] < 6 ? x[i] : 6) : 0;                \
        break;                                                                                     \
    case 4:                                                                                        \
        for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f)); \
        break;                                                                                     \
    default: break;                                                                                \
    }

static void act_generic(float *x, size_t n, int kind) { ACT_BODY }
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void act_avx2(float *x, size_t n, int kind) { ACT_BODY }
#endif

void mv_activation_f32(int use_avx2, float *x, size_t n, int kind) {
#if defined(__x86_64__)
    if (use_avx2) { act_avx2(x, n, kind); return; }
#endif
    (void)use_avx2;
    act_generic(x, n, kind);
}

#define SOFTMAX_BODY                                                                               \
    for (size_t r = 0; r < rows; r++) {                                                            \
        float *row = x + r * ld;                                                                   \
        float mx = -INFINITY;                                                                      \
        for (size_t i = 0; i < n; i++) { row[i] *= scale; mx = row[i] > mx ? row[i] : mx; }        \
        float sum = 0;                                                                             \
        for (size_t i = 0; i < n; i++) { float e = EXP_BODY(row[i] - mx); row[i] = e; sum += e; } \
        float inv = 1.0f / sum;                                                                    \
        for (size_t i = 0; i < n; i++) row[i] *= inv;                                              \
    }

static void softmax_generic(float *x, size_t rows, size_t n, size_t ld, float scale) { SOFTMAX_BODY }
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void softmax_avx2(float *x, size_t rows, size_t n, size_t ld, float scale) {
    SOFTMAX_BODY
}
#endif

void mv_softmax_f32(int use_avx2, float *x, size_t rows, size_t n, size_t ld, float scale) {
#if defined(__x86_64__)
    if (use_avx2) { softmax_avx2(x, rows, n, ld, scale); return; }
#endif
    (void)use_avx2;
    softmax_generic(x, rows, n, ld, scale);
}
