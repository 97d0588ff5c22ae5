// The multiply-accumulate peak of one x86-64 core for the two instructions that bound mvquant's
// int8 path and ONNX Runtime's fp32 path on an AVX2 CPU without VNNI:
//   - int8 (as mvquant's AVX2 GEMM runs it): vpmaddwd on int16-widened operands (16 MACs), with
//     the vpaddd that accumulates its result;
//   - fp32: vfmadd231ps (8 MACs).
// Independent accumulators (no latency chain), register operands (no loads). Best of 40 short
// runs each, interleaved, because the machine is shared. Build and run:
//   cc -O2 Targets/bench/x86_mac_peak.c -o /tmp/x86_mac_peak && /tmp/x86_mac_peak
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#if defined(__x86_64__)
/// Seconds for n iterations of 8 independent vpmaddwd + vpaddd pairs.
static double time_madd(long n) {
    const double t = now();
    __asm__ volatile(
        "vpxor %%ymm0,%%ymm0,%%ymm0\n vpxor %%ymm1,%%ymm1,%%ymm1\n"
        "vpxor %%ymm2,%%ymm2,%%ymm2\n vpxor %%ymm3,%%ymm3,%%ymm3\n"
        "vpcmpeqd %%ymm14,%%ymm14,%%ymm14\n vpcmpeqd %%ymm15,%%ymm15,%%ymm15\n"
        "1:\n"
        "vpmaddwd %%ymm14,%%ymm15,%%ymm4\n vpaddd %%ymm4,%%ymm0,%%ymm0\n"
        "vpmaddwd %%ymm14,%%ymm15,%%ymm5\n vpaddd %%ymm5,%%ymm1,%%ymm1\n"
        "vpmaddwd %%ymm14,%%ymm15,%%ymm6\n vpaddd %%ymm6,%%ymm2,%%ymm2\n"
        "vpmaddwd %%ymm14,%%ymm15,%%ymm7\n vpaddd %%ymm7,%%ymm3,%%ymm3\n"
        "vpmaddwd %%ymm14,%%ymm15,%%ymm8\n vpaddd %%ymm8,%%ymm0,%%ymm0\n"
        "vpmaddwd %%ymm14,%%ymm15,%%ymm9\n vpaddd %%ymm9,%%ymm1,%%ymm1\n"
        "vpmaddwd %%ymm14,%%ymm15,%%ymm10\n vpaddd %%ymm10,%%ymm2,%%ymm2\n"
        "vpmaddwd %%ymm14,%%ymm15,%%ymm11\n vpaddd %%ymm11,%%ymm3,%%ymm3\n"
        "dec %0\n jnz 1b\n"
        : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm14", "xmm15");
    return now() - t;
}

/// Seconds for n iterations of 8 independent vfmadd231ps.
static double time_fma(long n) {
    const double t = now();
    __asm__ volatile(
        "vxorps %%ymm0,%%ymm0,%%ymm0\n vxorps %%ymm1,%%ymm1,%%ymm1\n vxorps %%ymm2,%%ymm2,%%ymm2\n"
        "vxorps %%ymm3,%%ymm3,%%ymm3\n vxorps %%ymm4,%%ymm4,%%ymm4\n vxorps %%ymm5,%%ymm5,%%ymm5\n"
        "vxorps %%ymm6,%%ymm6,%%ymm6\n vxorps %%ymm7,%%ymm7,%%ymm7\n"
        "vxorps %%ymm14,%%ymm14,%%ymm14\n vxorps %%ymm15,%%ymm15,%%ymm15\n"
        "1:\n"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm0\n vfmadd231ps %%ymm14,%%ymm15,%%ymm1\n"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm2\n vfmadd231ps %%ymm14,%%ymm15,%%ymm3\n"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm4\n vfmadd231ps %%ymm14,%%ymm15,%%ymm5\n"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm6\n vfmadd231ps %%ymm14,%%ymm15,%%ymm7\n"
        "dec %0\n jnz 1b\n"
        : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm14", "xmm15");
    return now() - t;
}

int main(void) {
    const long n = 20000000;
    double madd = 0, fma = 0;  // instructions per second, best run
    for (int r = 0; r < 40; r++) {
        const double m = 8.0 * n / time_madd(n), f = 8.0 * n / time_fma(n);
        if (m > madd) madd = m;
        if (f > fma) fma = f;
    }
    printf("int8 via vpmaddwd+vpaddd: %.2f per ns = %.1f GMAC/s\n", madd / 1e9, madd * 16 / 1e9);
    printf("fp32 via vfmadd231ps:     %.2f per ns = %.1f GMAC/s\n", fma / 1e9, fma * 8 / 1e9);
    printf("int8 / fp32 MAC rate:     %.2f\n", madd * 16 / (fma * 8));
    return 0;
}
#else
int main(void) {
    puts("x86_mac_peak: x86-64 only");
    return 0;
}
#endif
