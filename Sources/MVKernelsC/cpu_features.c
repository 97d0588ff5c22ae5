#include "MVKernelsC.h"

#if defined(__x86_64__) || defined(__i386__)
uint32_t mv_cpu_features(void) {
    uint32_t f = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) f |= MV_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= MV_CPU_FMA;
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        f |= MV_CPU_AVX512VNNI;
    if (__builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw")) f |= MV_CPU_AVX512VBMI;
    return f;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
uint32_t mv_cpu_features(void) {
    uint32_t f = MV_CPU_NEON;
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    if (hw & HWCAP_ASIMDDP) f |= MV_CPU_DOTPROD;
    if (hw2 & HWCAP2_I8MM) f |= MV_CPU_I8MM;
    return f;
}
#else
uint32_t mv_cpu_features(void) { return 0; }
#endif
