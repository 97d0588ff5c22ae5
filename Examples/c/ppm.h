/* The examples' PPM reader (P6, maxval 255), shared by classify.c and api_test.c: the C API takes
 * RGB bytes, and a PPM is the one image format simple enough to read here in a few lines. */
#ifndef MVQ_EXAMPLES_PPM_H
#define MVQ_EXAMPLES_PPM_H
#include <stdio.h>
#include <stdlib.h>

/* Reads one header token of a PPM (skipping whitespace and # comments) as a positive integer. */
static int ppm_int(FILE *f, long *value) {
    int c = fgetc(f);
    for (;;) {
        if (c == '#') {
            while (c != '\n' && c != EOF) c = fgetc(f);
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            c = fgetc(f);
        } else {
            break;
        }
    }
    if (c < '0' || c > '9') return 0;
    *value = 0;
    while (c >= '0' && c <= '9') {
        *value = *value * 10 + (c - '0');
        if (*value > 1000000) return 0;
        c = fgetc(f);
    }
    return c == ' ' || c == '\t' || c == '\n' || c == '\r'; /* one whitespace byte ends the token */
}

/* A P6 PPM with maxval 255: returns malloc'ed RGB bytes (rows of 3 * width), or NULL. */
static unsigned char *read_ppm(const char *path, int *width, int *height) {
    FILE *f = fopen(path, "rb");
    long w, h, maxval;
    unsigned char *rgb = NULL;
    if (!f) return NULL;
    if (fgetc(f) == 'P' && fgetc(f) == '6' && ppm_int(f, &w) && ppm_int(f, &h) && ppm_int(f, &maxval) &&
        w > 0 && h > 0 && maxval == 255 && w * h <= 100000000L) {
        size_t n = (size_t)w * (size_t)h * 3;
        rgb = malloc(n);
        if (rgb && fread(rgb, 1, n, f) != n) {
            free(rgb);
            rgb = NULL;
        }
        *width = (int)w;
        *height = (int)h;
    }
    fclose(f);
    return rgb;
}

#endif
