// ISA-specific inner loops that Swift cannot express (AVX2, AVX-512 VNNI, NEON, SDOT), one file
// per ISA with `target` attributes, called once per tile from Swift. CPU feature detection too.
#ifndef MVKERNELSC_H
#define MVKERNELSC_H
#include <stdint.h>
#include <stddef.h>

/// Bit set of CPU features relevant to the kernels (see MV_CPU_*).
uint32_t mv_cpu_features(void);
#define MV_CPU_AVX2 (1u << 0)
#define MV_CPU_AVX512VNNI (1u << 1)
#define MV_CPU_FMA (1u << 2)
#define MV_CPU_AVX512VBMI (1u << 3)
#define MV_CPU_NEON (1u << 8)
#define MV_CPU_DOTPROD (1u << 9)
#define MV_CPU_I8MM (1u << 10)

// Float32 kernels of the reference executor.
#include "mv_float.h"

// Int8 GEMM / depthwise kernels (one C file per ISA).
#include "mv_int8.h"

// Integer non-linear kernels: softmax, LayerNorm, add, requantize (nonlinear_*.c).
#include "mv_nonlinear.h"

#endif
