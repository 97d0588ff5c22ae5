// The C source of the cross-ISA bit-exactness harness (kept as a Swift string so that the test
// target stays Swift-only). Int8CrossISAHarnessTests writes it out, compiles it with the kernel C
// files for AArch64 (run under qemu-user as Cortex-A72 and Cortex-A76) and for x86-64 with SIMDe
// emulating AVX-512 VNNI, and checks every kernel against a scalar C model of the reference.
enum Int8HarnessSource {
    static let harnessC = #"""
// Bit-exactness harness for the int8 kernels of one ISA against a scalar C model of the reference.
// Usage: harness neon|neondot|avx2|avx512vnni [iterations]. Prints "N passed, M failed".
#include "MVKernelsC.h"
#include "mv_int8_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x1234567;
static uint64_t rnd(void) {
    rng_state += 0x9E3779B97F4A7C15ull;
    uint64_t z = rng_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int ri(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); }

typedef struct { int nr, kr, kpad, vnni; } layout;
static layout layout_for(const char *isa) {
    if (!strcmp(isa, "neon")) return (layout){MV_NEON_NR, MV_NEON_KR, MV_NEON_KPAD, 0};
    if (!strcmp(isa, "neondot")) return (layout){MV_NEONDOT_NR, MV_NEONDOT_KR, MV_NEONDOT_KPAD, 0};
    if (!strcmp(isa, "avx512vnni")) return (layout){MV_VNNI_NR, MV_VNNI_KR, MV_VNNI_KPAD, 1};
    fprintf(stderr, "unknown isa %s\n", isa);
    exit(2);
}

static int8_t out_stage(int32_t acc, int32_t m, int32_t s, int32_t zp, int32_t lo, int32_t hi, const int8_t *lut) {
    int64_t z = (int64_t)mv_requantize_scalar(acc, m, s) + zp;
    if (z < lo) z = lo;
    if (z > hi) z = hi;
    int8_t o = (int8_t)z;
    return lut ? lut[o + 128] : o;
}

static int gemm_case(const char *isa, layout L, int iter) {
    const int m = ri(1, 19), n = ri(1, 70), k = iter % 17 == 0 ? ri(2000, 4400) : ri(1, 300);
    const int indexed = ri(0, 1), lda = k + ri(0, 5);
    const int arows = m + 3;
    int8_t *a = malloc((size_t)arows * lda);
    for (int i = 0; i < arows * lda; i++) a[i] = (int8_t)ri(-128, 127);
    if (ri(0, 3) == 0) for (int i = 0; i < arows * lda; i++) if (ri(0, 3) == 0) a[i] = ri(0, 1) ? -128 : 127;
    int32_t *aoff = malloc(sizeof(int32_t) * m);
    for (int i = 0; i < m; i++) aoff[i] = indexed ? ri(0, arows - 1) * lda : i * lda;
    const int wlo = ri(0, 3) == 0 ? -128 : -127;
    int8_t *b = malloc((size_t)n * k);
    for (int i = 0; i < n * k; i++) b[i] = (int8_t)ri(wlo, 127);
    int hasmin = 0;
    for (int i = 0; i < n * k; i++) hasmin |= b[i] == -128;
    const int32_t zps[4] = {-128, 127, 0, ri(-128, 127)};
    const int32_t za = zps[ri(0, 3)], zb = ri(0, 3) == 0 ? zps[ri(0, 3)] : 0;
    const int32_t zo = zps[ri(0, 3)];
    const int32_t lo = ri(0, 1) ? -128 : ri(-128, 0);
    const int32_t hi = ri(0, 1) ? 127 : ri(lo, 127);
    // No table, one shared table, or one per column (lut_stride 256), exactly as long as needed.
    const int lut_mode = ri(0, 2);
    const size_t lut_stride = lut_mode == 2 ? 256 : 0, lut_len = lut_mode == 2 ? 256 * (size_t)n : 256;
    int8_t *lut = malloc(lut_len);
    for (size_t i = 0; i < lut_len; i++) lut[i] = (int8_t)ri(-128, 127);
    const int np = (n + L.nr - 1) / L.nr * L.nr, kp = (k + L.kpad - 1) / L.kpad * L.kpad;
    int32_t *bias = calloc(np, 4), *mult = calloc(np, 4), *shift = calloc(np, 4), *rawbias = calloc(n, 4);
    int8_t *packed = calloc((size_t)np * kp, 1);
    int kshift = 0;
    while ((1ll << kshift) < (long long)k * 128 * 128 / 256) kshift++;
    // Pack with the library's packer (as PackedInt8Matrix does), from rows or from a column-major copy.
    int32_t *sums = calloc(n, 4);
    int packed_min;
    if (ri(0, 1)) {
        packed_min = mv_pack_b_int8(b, k, 1, n, k, L.nr, L.kr, kp, packed, sums);
    } else {
        int8_t *bt = malloc((size_t)n * k);
        for (int c = 0; c < n; c++) for (int kk = 0; kk < k; kk++) bt[kk * n + c] = b[c * k + kk];
        packed_min = mv_pack_b_int8(bt, 1, n, n, k, L.nr, L.kr, kp, packed, sums);
        free(bt);
    }
    if (packed_min != hasmin) { fprintf(stderr, "mv_pack_b_int8 -128 flag wrong\n"); return 0; }
    for (int c = 0; c < n; c++) {
        rawbias[c] = ri(-100000, 100000);
        int32_t sum = 0;
        for (int kk = 0; kk < k; kk++) {
            const int8_t v = b[c * k + kk];
            sum += v;
            if (packed[(c / L.nr) * kp * L.nr + ((kk / L.kr) * L.nr + c % L.nr) * L.kr + kk % L.kr] != v) {
                fprintf(stderr, "mv_pack_b_int8 misplaced (%d, %d)\n", c, kk);
                return 0;
            }
        }
        if (sum != sums[c]) { fprintf(stderr, "mv_pack_b_int8 sum wrong\n"); return 0; }
        int32_t f = rawbias[c] - za * sum;
        if (zb) f += k * za * zb;
        if (L.vnni) f -= 128 * sum;
        bias[c] = f;
        mult[c] = ri(1 << 30, 0x7fffffff);
        int s = ri(0, 20) + kshift;
        if (ri(0, 5) == 0) s = ri(-8, -1);
        if (ri(0, 15) == 0) s = ri(30, 62);
        shift[c] = s;
    }
    const int ldc = n + ri(0, 3);
    int8_t *c8 = malloc((size_t)m * ldc);
    int32_t *c32 = malloc(sizeof(int32_t) * m * ldc);
    memset(c8, 0x55, (size_t)m * ldc);
    mv_gemm_args args = {0};
    args.a = a; args.a_offsets = indexed ? aoff : NULL; args.a_stride = lda;
    args.c = c8; args.c_stride = ldc;
    args.m = m; args.k = k; args.n = n;
    args.packed = packed; args.bias = bias; args.multiplier = mult; args.shift = shift;
    args.b_zero_point = zb; args.output_zero_point = zo; args.clamp_min = lo; args.clamp_max = hi;
    args.lut = lut_mode ? lut : NULL; args.lut_stride = lut_stride; args.flags = hasmin ? MV_GEMM_B_HAS_MIN : 0;
    if (!strcmp(isa, "neon")) mv_gemm_q8_neon(&args);
    else if (!strcmp(isa, "neondot")) mv_gemm_q8_neondot(&args);
    else mv_gemm_q8_avx512vnni(&args);
    args.c = c32; args.lut = NULL;
    if (!strcmp(isa, "neon")) mv_gemm_i32_neon(&args);
    else if (!strcmp(isa, "neondot")) mv_gemm_i32_neondot(&args);
    else mv_gemm_i32_avx512vnni(&args);
    int bad = 0;
    for (int i = 0; i < m && !bad; i++) {
        for (int j = 0; j < n; j++) {
            int64_t acc = rawbias[j];
            for (int kk = 0; kk < k; kk++) acc += ((int64_t)a[aoff[i] + kk] - za) * ((int64_t)b[j * k + kk] - zb);
            const int8_t want = out_stage((int32_t)acc, mult[j], shift[j], zo, lo, hi, lut_mode ? lut + j * lut_stride : NULL);
            if (c8[i * ldc + j] != want || c32[i * ldc + j] != (int32_t)acc) {
                fprintf(stderr, "%s gemm case %d (m%d n%d k%d) row %d col %d: got %d/%d want %d/%d\n", isa, iter, m, n, k, i, j,
                        c8[i * ldc + j], c32[i * ldc + j], want, (int32_t)acc);
                bad = 1;
                break;
            }
        }
        for (int j = n; j < ldc; j++) if (c8[i * ldc + j] != 0x55) { fprintf(stderr, "%s gemm case %d wrote past N\n", isa, iter); bad = 1; }
    }
    free(a); free(aoff); free(b); free(sums); free(bias); free(mult); free(shift); free(rawbias); free(packed); free(c8); free(c32); free(lut);
    return !bad;
}

static int dw_case(const char *isa, int iter) {
    const int avx512 = !strcmp(isa, "avx512vnni");
    // Dilations of DeepLabV3 (2 in the backbone, the ASPP rates), on maps both smaller than the
    // dilation (every off-centre tap is padding) and large enough for windows wholly inside; channel
    // counts around the 16-channel groups.
    static const int dilations[5] = {1, 2, 3, 6, 12}, channel_counts[5] = {1, 3, 16, 17, 40};
    const int dil = iter < 3 ? 1 : dilations[ri(0, 4)];
    const int big = dil > 1 && ri(0, 3) == 0;
    const int h = big ? ri(13, 27) : ri(1, 12);
    const int C = iter < 3 ? 16 * (iter + 1) : ri(0, 1) ? channel_counts[ri(0, 4)] : ri(1, 70), stride = ri(1, 2);
    // AVX-512: also rows of more than one 64-pixel tap batch, odd widths (its pixel pairs and quads).
    const int wide = avx512 && ri(0, 4) == 0;
    const int w = wide ? ri(60, 140) : big ? ri(13, 27) : ri(1, 12);
    const int ips = C + (ri(0, 1) ? 0 : ri(1, 7)), ops = C + (ri(0, 1) ? 0 : ri(1, 7));
    const int oh = (h - 1) / stride + 1, ow = (w - 1) / stride + 1;
    int8_t *in = malloc((size_t)h * w * ips);
    for (int i = 0; i < h * w * ips; i++) in[i] = (int8_t)ri(-128, 127);
    int8_t *wt = malloc((size_t)C * 9);
    for (int i = 0; i < C * 9; i++) wt[i] = (int8_t)ri(avx512 ? -128 : -127, 127);  // NEON: no -128
    if (ri(0, 2) == 0) for (int i = 0; i < C * 9; i++) if (ri(0, 1)) wt[i] = ri(0, 1) ? -127 : 127;
    const int32_t zps[4] = {-128, 127, 0, ri(-128, 127)};
    const int32_t zi = zps[ri(0, 3)], zo = zps[ri(0, 3)];
    const int32_t lo = ri(0, 1) ? -128 : ri(-128, 0);
    const int32_t hi = ri(0, 1) ? 127 : ri(lo, 127);
    // No table, one table, or one per channel.
    const int use_lut = ri(0, 1), lut_stride = use_lut && ri(0, 1) ? 256 : 0;
    int8_t *lut = malloc(256 * (size_t)C);
    for (int i = 0; i < 256 * C; i++) lut[i] = (int8_t)ri(-128, 127);
    const int cp = (C + 31) / 32 * 32;
    int8_t *packed = calloc((size_t)cp * 12, 1), *pad = malloc(cp);
    memset(pad, zi, cp);
    int32_t *bias = calloc(cp, 4), *mult = calloc(cp, 4), *shift = calloc(cp, 4), *rawbias = calloc(C, 4);
    for (int c = 0; c < C; c++) {
        int32_t sum = 0;
        // AVX-512: slot and weight positions of mv_int8.h's layout (group of 32, accumulator k,
        // lane L, channel j); NEON: natural order, [group of 16][tap][channel].
        const int g = c / 32, i = c % 32, L = i / 16, k = (i % 16) / 4, j = i % 4;
        const int slot = avx512 ? g * 32 + k * 8 + L * 4 + j : c;
        for (int t = 0; t < 9; t++) {
            sum += wt[c * 9 + t];
            if (avx512) packed[g * 384 + ((t / 4) * 4 + k) * 32 + (L * 4 + j) * 4 + t % 4] = wt[c * 9 + t];
            else packed[((c / 16) * 9 + t) * 16 + c % 16] = wt[c * 9 + t];
        }
        rawbias[c] = ri(-50000, 50000);
        bias[slot] = rawbias[c] - zi * sum - (avx512 ? 128 * sum : 0);
        mult[slot] = ri(1 << 30, 0x7fffffff);
        int s = ri(8, 28);
        if (ri(0, 5) == 0) s = ri(-8, -1);
        if (ri(0, 15) == 0) s = ri(30, 62);
        shift[slot] = s;
    }
    int8_t *out = malloc((size_t)oh * ow * ops);
    memset(out, 0x33, (size_t)oh * ow * ops);
    mv_dw_args d = {0};
    d.input = in; d.in_h = h; d.in_w = w; d.in_pixel_stride = ips; d.in_row_stride = w * ips;
    d.stride = stride; d.dilation = dil;
    d.pad = pad; d.channels = C; d.out = out; d.out_w = ow; d.out_pixel_stride = ops; d.out_row_stride = ow * ops;
    d.packed = packed; d.bias = bias; d.multiplier = mult; d.shift = shift;
    d.output_zero_point = zo; d.clamp_min = lo; d.clamp_max = hi; d.lut = use_lut ? lut : NULL; d.lut_stride = lut_stride;
    const int split = ri(0, oh);
    d.y0 = 0; d.y1 = split;
    if (avx512) mv_dw3x3_avx512(&d); else mv_dw3x3_neon(&d);
    d.y0 = split; d.y1 = oh;
    if (avx512) mv_dw3x3_avx512(&d); else mv_dw3x3_neon(&d);
    int bad = 0;
    for (int y = 0; y < oh && !bad; y++)
        for (int x = 0; x < ow && !bad; x++) {
            for (int c = 0; c < C; c++) {
                int64_t acc = rawbias[c];
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++) {
                        const int iy = y * stride + (dy - 1) * dil, ix = x * stride + (dx - 1) * dil;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                        acc += (int64_t)wt[c * 9 + dy * 3 + dx] * ((int64_t)in[(iy * w + ix) * ips + c] - zi);
                    }
                const int ci = c % 32, slot = avx512 ? c / 32 * 32 + (ci % 16) / 4 * 8 + ci / 16 * 4 + ci % 4 : c;
                const int8_t want = out_stage((int32_t)acc, mult[slot], shift[slot], zo, lo, hi, use_lut ? lut + c * lut_stride : NULL);
                const int8_t got = out[(y * ow + x) * ops + c];
                if (got != want) {
                    fprintf(stderr, "%s dw case %d (%dx%dx%d s%d d%d) y%d x%d c%d: got %d want %d\n", isa, iter, h, w, C, stride, dil, y, x, c,
                            got, want);
                    bad = 1;
                    break;
                }
            }
            for (int c = C; c < ops; c++) if (out[(y * ow + x) * ops + c] != 0x33) { fprintf(stderr, "dw wrote past C\n"); bad = 1; }
        }
    free(in); free(wt); free(lut); free(packed); free(pad); free(bias); free(mult); free(shift); free(rawbias); free(out);
    return !bad;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: harness neon|neondot|avx512vnni [iterations]\n"); return 2; }
    const char *isa = argv[1];
    const int iters = argc > 2 ? atoi(argv[2]) : 400;
    const layout L = layout_for(isa);
    int passed = 0, failed = 0;
    for (int i = 0; i < iters; i++) { if (gemm_case(isa, L, i)) passed++; else failed++; }
    if (!strcmp(isa, "neon") || !strcmp(isa, "neondot") || !strcmp(isa, "avx512vnni"))
        for (int i = 0; i < iters / 2; i++) { if (dw_case(isa, i)) passed++; else failed++; }
    printf("%s: %d passed, %d failed\n", isa, passed, failed);
    return failed != 0;
}
"""#
}
