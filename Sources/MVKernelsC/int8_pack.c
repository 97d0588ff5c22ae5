// Packing of the int8 GEMM's B operand into an ISA tile layout (portable C, called from
// PackedInt8Matrix through the GEMM kernel table; fast enough to repack attention's K and V per
// head at run time).
#include "mv_int8_internal.h"

int mv_pack_b_int8(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                   size_t nr, size_t kr, size_t kp, void *dst, int32_t *sums) {
    return mv_pack_b_columns(src, n_stride, k_stride, n, k, nr, kr, kp, 0, 0, dst, sums);
}

int mv_pack_b_columns(const int8_t *src, ptrdiff_t n_stride, ptrdiff_t k_stride, size_t n, size_t k,
                      size_t nr, size_t kr, size_t kp, int wide, size_t c0, void *dst, int32_t *sums) {
    int8_t *d8 = (int8_t *)dst;
    int16_t *d16 = (int16_t *)dst;
    int has_min = 0;
    if (k_stride == 1) {
        // Row-major source: each column's K values are contiguous.
        for (size_t c = c0; c < n; c++) {
            const int8_t *s = src + (ptrdiff_t)c * n_stride;
            int32_t sum = 0;
            int8_t mn = 127;
            for (size_t i = 0; i < k; i++) {
                sum += s[i];
                mn = s[i] < mn ? s[i] : mn;
            }
            sums[c] = sum;
            has_min |= mn == -128;
            size_t base = (c / nr) * kp * nr + (c % nr) * kr;
            if (nr == 1 && kr == 1 && !wide) {  // plain row-major (reference layout)
                memcpy(d8 + base, s, k);
                continue;
            }
            const size_t kfull = k - k % kr, step = nr * kr;
            size_t kk = 0;
            // Full groups with a compile-time size for the common KR values.
            if (wide && kr == 2) {
                for (; kk < kfull; kk += 2, base += step) { d16[base] = s[kk]; d16[base + 1] = s[kk + 1]; }
            } else if (!wide && kr == 4) {
                for (; kk < kfull; kk += 4, base += step) memcpy(d8 + base, s + kk, 4);
            } else if (!wide && kr == 16) {
                for (; kk < kfull; kk += 16, base += step) memcpy(d8 + base, s + kk, 16);
            }
            for (; kk < k; kk += kr, base += step) {
                const size_t cnt = k - kk < kr ? k - kk : kr;
                if (wide) {
                    for (size_t t = 0; t < cnt; t++) d16[base + t] = s[kk + t];
                } else {
                    memcpy(d8 + base, s + kk, cnt);
                }
            }
        }
    } else if (n_stride == 1) {
        // Column-major source (V for P.V): row kk of the source holds all N values of that k.
        for (size_t c = c0; c < n; c++) sums[c] = 0;
        int8_t mn = 127;
        for (size_t kk = 0; kk < k; kk++) {
            const int8_t *s = src + (ptrdiff_t)kk * k_stride;
            const size_t off = (kk / kr) * nr * kr + kk % kr;
            for (size_t c = c0; c < n; c++) {
                sums[c] += s[c];
                mn = s[c] < mn ? s[c] : mn;
            }
            if (nr == 1 && kr == 1 && !wide) {  // plain row-major (reference layout)
                for (size_t c = c0; c < n; c++) d8[c * kp + kk] = s[c];
                continue;
            }
            for (size_t n0 = c0; n0 < n; n0 += nr) {
                const size_t cnt = n - n0 < nr ? n - n0 : nr;
                const size_t base = n0 * kp + off;
                if (wide) {
                    for (size_t j = 0; j < cnt; j++) d16[base + j * kr] = s[n0 + j];
                } else {
                    for (size_t j = 0; j < cnt; j++) d8[base + j * kr] = s[n0 + j];
                }
            }
        }
        has_min |= mn == -128;
    } else {
        for (size_t c = c0; c < n; c++) {
            int32_t sum = 0;
            for (size_t kk = 0; kk < k; kk++) {
                const int8_t v = src[(ptrdiff_t)c * n_stride + (ptrdiff_t)kk * k_stride];
                sum += v;
                has_min |= v == -128;
                const size_t e = (c / nr) * kp * nr + ((kk / kr) * nr + c % nr) * kr + kk % kr;
                if (wide) d16[e] = v; else d8[e] = v;
            }
            sums[c] = sum;
        }
    }
    return has_min;
}
