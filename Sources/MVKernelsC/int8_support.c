// Small portable helpers for the int8 kernels' Swift side.
#include "mv_int8.h"
#include <stdio.h>

void mv_log_stderr(const char *message) {
    fputs(message, stderr);
    fputc('\n', stderr);
    fflush(stderr);
}
