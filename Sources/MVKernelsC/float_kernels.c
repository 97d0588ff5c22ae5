// Float32 kernels of the reference executor. The same source is compiled twice: once for the
// baseline ISA and once with AVX2+FMA target attributes (x86-64 only); GCC/clang vector
// extensions lower to SSE, AVX2 or NEON as the target allows.
#include "MVKernelsC.h"
#include <math.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32), aligned(4)));

#define MR 6

// ---- exp for activations and softmax ----------------------------------------------------------
typedef int32_t v8i __attribute__((vector_size(32), aligned(4)));

// Cephes-style exp on 8 lanes: n = round(x·log2 e), r = x − n·ln 2 (two-part constant), degree-5
// polynomial, scaled by 2^n through the exponent bits. Relative error about 2e-7. Macros rather
// than functions: a 32-byte vector argument would change the ABI of the baseline (non-AVX) build.
#define EXP8(xin)                                                                                  \
    ({                                                                                             \
        const v8f hi_ = {88.0f, 88.0f, 88.0f, 88.0f, 88.0f, 88.0f, 88.0f, 88.0f};                  \
        v8f x_ = __builtin_elementwise_max(__builtin_elementwise_min((xin), hi_), -hi_);           \
        const float magic_ = 12582912.0f; /* 1.5·2^23: adding and subtracting rounds */           \
        v8f n_ = (x_ * 1.44269504088896341f + magic_) - magic_;                                    \
        v8f r_ = x_ - n_ * 0.693359375f + n_ * 2.12194440e-4f;                                     \
        v8f p_ = r_ * 1.9875691500e-4f + 1.3981999507e-3f;                                         \
        p_ = p_ * r_ + 8.3334519073e-3f;                                                           \
        p_ = p_ * r_ + 4.1665795894e-2f;                                                           \
        p_ = p_ * r_ + 1.6666665459e-1f;                                                           \
        p_ = p_ * r_ + 5.0000001201e-1f;                                                           \
        p_ = p_ * r_ * r_ + r_ + 1.0f;                                                             \
        v8i e_ = (__builtin_convertvector(n_, v8i) + 127) << 23;                                   \
        v8f s_;                                                                                    \
        memcpy(&s_, &e_, 32);                                                                      \
        p_ * s_;                                                                                   \
    })

#define LOAD8(p, n)                                                                                \
    ({                                                                                             \
        v8f v_ = {0, 0, 0, 0, 0, 0, 0, 0};                                                         \
        if ((n) == 8) memcpy(&v_, (p), 32); /* constant size: a plain vector load */            \
        else memcpy(&v_, (p), (n) * sizeof(float));                                                \
        v_;                                                                                        \
    })

#define STORE8(p, v, n)                                                                            \
    do {                                                                                           \
        v8f w_ = (v);                                                                              \
        if ((n) == 8) memcpy((p), &w_, 32);                                                        \
        else memcpy((p), &w_, (n) * sizeof(float));                                                \
    } while (0)


/// Applies activation `act` (0 none, 1 SiLU, 2 ReLU, 3 ReLU6; GELU is not fused) to a vector.
#define ACTIVATE8(v, act)                                                                          \
    ({                                                                                             \
        v8f a_ = (v);                                                                              \
        const v8f z_ = {0, 0, 0, 0, 0, 0, 0, 0};                                                   \
        const v8f six_ = {6, 6, 6, 6, 6, 6, 6, 6};                                                 \
        if ((act) == 1) a_ = a_ / (1.0f + EXP8(-a_));                                              \
        else if ((act) == 2) a_ = __builtin_elementwise_max(a_, z_);                               \
        else if ((act) == 3) a_ = __builtin_elementwise_min(__builtin_elementwise_max(a_, z_), six_); \
        a_;                                                                                        \
    })

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
            if (act != 0)                                                                          \
                for (int r = 0; r < MR; r++) {                                                     \
                    acc[r][0] = ACTIVATE8(acc[r][0], act);                                         \
                    acc[r][1] = ACTIVATE8(acc[r][1], act);                                         \
                }                                                                                  \
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
                          const float *bias, size_t n, float *c, size_t ldc, int act) {
    SGEMM_BODY
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void sgemm_avx2(const float *a, size_t lda, size_t m, size_t k,
                                                           const float *packed_b, const float *bias, size_t n,
                                                           float *c, size_t ldc, int act) {
    SGEMM_BODY
}
#endif

void mv_sgemm(int use_avx2, const float *a, size_t lda, size_t m, size_t k, const float *packed_b,
              const float *bias, size_t n, float *c, size_t ldc, int act) {
    if (m == 0 || n == 0) return;
#if defined(__x86_64__)
    if (use_avx2) { sgemm_avx2(a, lda, m, k, packed_b, bias, n, c, ldc, act); return; }
#endif
    (void)use_avx2;
    sgemm_generic(a, lda, m, k, packed_b, bias, n, c, ldc, act);
}

// ---- Depthwise 3x3 (dilation d: taps at -d, 0, +d; padding d) --------------------------------
#define DW_BODY                                                                                    \
    for (size_t y = y0; y < y1; y++) {                                                             \
        for (size_t x = 0; x < out_w; x++) {                                                       \
            float *o = out + (y * out_w + x) * c;                                                  \
            memcpy(o, bias, c * sizeof(float));                                                    \
            for (int dy = 0; dy < 3; dy++) {                                                       \
                long iy = (long)(y * stride) + (long)(dy - 1) * dilation;                          \
                if (iy < 0 || iy >= (long)h) continue;                                             \
                for (int dx = 0; dx < 3; dx++) {                                                   \
                    long ix = (long)(x * stride) + (long)(dx - 1) * dilation;                      \
                    if (ix < 0 || ix >= (long)w) continue;                                         \
                    const float *ip = in + ((size_t)iy * w + (size_t)ix) * c;                      \
                    const float *wp = weights + (size_t)(dy * 3 + dx) * c;                         \
                    for (size_t ch = 0; ch < c; ch++) o[ch] += ip[ch] * wp[ch];                    \
                }                                                                                  \
            }                                                                                      \
            if (act != 0)                                                                          \
                for (size_t ch = 0; ch < c; ch += 8) {                                             \
                    size_t m_ = c - ch < 8 ? c - ch : 8;                                           \
                    STORE8(o + ch, ACTIVATE8(LOAD8(o + ch, m_), act), m_);                         \
                }                                                                                  \
        }                                                                                          \
    }

static void dw_generic(const float *in, size_t h, size_t w, size_t c, const float *weights, const float *bias,
                       int stride, int dilation, float *out, size_t out_w, size_t y0, size_t y1, int act) {
    DW_BODY
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void dw_avx2(const float *in, size_t h, size_t w, size_t c,
                                                        const float *weights, const float *bias, int stride,
                                                        int dilation, float *out, size_t out_w, size_t y0, size_t y1, int act) {
    DW_BODY
}
#endif

void mv_depthwise3x3_f32(int use_avx2, const float *in, size_t h, size_t w, size_t c, const float *weights,
                         const float *bias, int stride, int dilation, float *out, size_t out_w, size_t y0, size_t y1,
                         int act) {
#if defined(__x86_64__)
    if (use_avx2) { dw_avx2(in, h, w, c, weights, bias, stride, dilation, out, out_w, y0, y1, act); return; }
#endif
    (void)use_avx2;
    dw_generic(in, h, w, c, weights, bias, stride, dilation, out, out_w, y0, y1, act);
}

#define ACT_BODY                                                                                   \
    const v8f zero8 = {0, 0, 0, 0, 0, 0, 0, 0};                                                    \
    const v8f six8 = {6, 6, 6, 6, 6, 6, 6, 6};                                                     \
    for (size_t i = 0; i < n; i += 8) {                                                            \
        size_t m = n - i < 8 ? n - i : 8;                                                          \
        v8f v = LOAD8(x + i, m);                                                                   \
        switch (kind) {                                                                            \
        case 1: v = v / (1.0f + EXP8(-v)); break;                                                  \
        case 2: v = __builtin_elementwise_max(v, zero8); break;                                    \
        case 3: v = __builtin_elementwise_min(__builtin_elementwise_max(v, zero8), six8); break;   \
        case 4:                                                                                    \
            for (int j = 0; j < 8; j++) v[j] = 0.5f * v[j] * (1.0f + erff(v[j] * 0.70710678118654752f)); \
            break;                                                                                 \
        default: break;                                                                            \
        }                                                                                          \
        STORE8(x + i, v, m);                                                                       \
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

// Row-wise softmax; lanes past the row end are set to -inf so they add nothing.
#define SOFTMAX_BODY                                                                               \
    for (size_t r = 0; r < rows; r++) {                                                            \
        float *row = x + r * ld;                                                                   \
        v8f mx = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY}; \
        for (size_t i = 0; i < n; i += 8) {                                                        \
            size_t m = n - i < 8 ? n - i : 8;                                                      \
            v8f v = LOAD8(row + i, m) * scale;                                                     \
            for (size_t j = m; j < 8; j++) v[j] = -INFINITY;                                       \
            mx = __builtin_elementwise_max(v, mx);                                                 \
        }                                                                                          \
        float m1 = mx[0];                                                                          \
        for (int j = 1; j < 8; j++) m1 = mx[j] > m1 ? mx[j] : m1;                                  \
        v8f sum = {0, 0, 0, 0, 0, 0, 0, 0};                                                        \
        for (size_t i = 0; i < n; i += 8) {                                                        \
            size_t m = n - i < 8 ? n - i : 8;                                                      \
            v8f e = EXP8(LOAD8(row + i, m) * scale - m1);                                          \
            for (size_t j = m; j < 8; j++) e[j] = 0;                                               \
            sum += e;                                                                              \
            STORE8(row + i, e, m);                                                                 \
        }                                                                                          \
        float total = 0;                                                                           \
        for (int j = 0; j < 8; j++) total += sum[j];                                               \
        float inv = 1.0f / total;                                                                  \
        for (size_t i = 0; i < n; i += 8) {                                                        \
            size_t m = n - i < 8 ? n - i : 8;                                                      \
            STORE8(row + i, LOAD8(row + i, m) * inv, m);                                           \
        }                                                                                          \
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
