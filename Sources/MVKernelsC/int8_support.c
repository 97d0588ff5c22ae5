// Small portable helpers for the int8 kernels' Swift side.
#include "mv_int8.h"
#include <stdio.h>

void mv_log_stderr(const char *message) {
    fputs(message, stderr);
    fputc('\n', stderr);
    fflush(stderr);
}

#include "mv_nonlinear_internal.h"

uint64_t mv_isqrt_rounded_for_tests(uint64_t x) { return mvnl_isqrt_rounded(x); }
