/*
 * classify.c: the C API of mvquant in one file. Loads a model (.mvq or float checkpoint
 * directory), reads a binary PPM (P6, maxval 255) or raw float32 pixel values, prints the top 5.
 *
 *   cc -std=c99 -Wall -Werror -I OUT/include classify.c -L OUT/lib -lmvquant -o classify
 *   ./classify MODEL IMAGE.ppm [--threads N] [--logits OUT.f32]
 *   ./classify MODEL --pixels X.f32 H W [--threads N] [--logits OUT.f32]
 *
 * --pixels: float32 NCHW [1, 3, H, W] little-endian, as the model sees them (`mvquant preprocess`
 * writes them in a safetensors file). --logits writes the logits as raw float32.
 */
#include <mvquant.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppm.h"

/* A whole file of float32 values: malloc'ed, or NULL. */
static float *read_floats(const char *path, long *count) {
    FILE *f = fopen(path, "rb");
    float *values = NULL;
    long bytes;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (bytes = ftell(f)) > 0 && bytes % 4 == 0 && fseek(f, 0, SEEK_SET) == 0) {
        values = malloc((size_t)bytes);
        if (values && fread(values, 1, (size_t)bytes, f) != (size_t)bytes) {
            free(values);
            values = NULL;
        }
        *count = bytes / 4;
    }
    fclose(f);
    return values;
}

/* e^x for x <= 0 without libm (the example links with -lmvquant alone): a Taylor series on x/1024,
 * squared ten times; relative error about 1e-12, plenty for printing probabilities. */
static double exp_neg(double x) {
    double r, term, sum;
    int i;
    if (x < -700) return 0;
    r = x / 1024;
    term = 1;
    sum = 1;
    for (i = 1; i < 10; i++) {
        term *= r / i;
        sum += term;
    }
    for (i = 0; i < 10; i++) sum *= sum;
    return sum;
}

int main(int argc, char **argv) {
    const char *model_path, *image = NULL, *pixels = NULL, *logits_out = NULL;
    int threads = 1, ph = 0, pw = 0, i, n, status, order[5], k;
    mvq_model *model;
    mvq_session *session;
    float *logits;
    double total = 0, max;

    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL (IMAGE.ppm | --pixels X.f32 H W) [--threads N] [--logits OUT.f32]\n", argv[0]);
        return 1;
    }
    model_path = argv[1];
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--pixels") == 0 && i + 3 < argc) {
            pixels = argv[i + 1];
            ph = atoi(argv[i + 2]);
            pw = atoi(argv[i + 3]);
            i += 3;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--logits") == 0 && i + 1 < argc) {
            logits_out = argv[++i];
        } else if (argv[i][0] != '-' && !image) {
            image = argv[i];
        } else {
            fprintf(stderr, "%s: unexpected argument %s\n", argv[0], argv[i]);
            return 1;
        }
    }
    if (!image == !pixels) {
        fprintf(stderr, "%s: give an image or --pixels\n", argv[0]);
        return 1;
    }
    if (mvq_model_open(model_path, &model) != MVQ_OK) {
        fprintf(stderr, "%s\n", mvq_last_error());
        return 2;
    }
    if (mvq_session_create(model, threads, &session) != MVQ_OK) {
        fprintf(stderr, "%s\n", mvq_last_error());
        mvq_model_close(model);
        return 2;
    }
    n = mvq_model_num_labels(model);
    logits = calloc((size_t)n, sizeof(float));
    if (image) {
        int width, height;
        unsigned char *rgb = read_ppm(image, &width, &height);
        if (!rgb) {
            fprintf(stderr, "%s: not a binary PPM (P6, maxval 255)\n", image);
            return 2;
        }
        status = mvq_session_run_rgb(session, rgb, width, height, 3 * width, logits, n);
        free(rgb);
    } else {
        long count = 0;
        float *x = read_floats(pixels, &count);
        if (!x || count != 3L * ph * pw) {
            fprintf(stderr, "%s: expected %d float32 values (3 x %d x %d)\n", pixels, 3 * ph * pw, ph, pw);
            return 2;
        }
        status = mvq_session_run_pixels(session, x, ph, pw, logits, n);
        free(x);
    }
    if (status != MVQ_OK) {
        fprintf(stderr, "%s: %s\n", mvq_error_name(status), mvq_last_error());
        return 2;
    }
    if (logits_out) {
        FILE *f = fopen(logits_out, "wb");
        if (!f || fwrite(logits, sizeof(float), (size_t)n, f) != (size_t)n || fclose(f) != 0) {
            fprintf(stderr, "%s: cannot write\n", logits_out);
            return 2;
        }
    }
    /* Softmax and the top 5 (ties to the lower index), printed as `mvquant classify` does. */
    max = logits[0];
    for (i = 1; i < n; i++) if (logits[i] > max) max = logits[i];
    for (i = 0; i < n; i++) total += exp_neg((double)logits[i] - max);
    k = n < 5 ? n : 5;
    for (i = 0; i < k; i++) {
        int j, best = -1;
        for (j = 0; j < n; j++) {
            int used = 0, u;
            for (u = 0; u < i; u++) used |= order[u] == j;
            if (!used && (best < 0 || logits[j] > logits[best])) best = j;
        }
        order[i] = best;
        printf("  %6.2f%%  %s (%d)\n", 100.0 * exp_neg((double)logits[best] - max) / total, mvq_model_label(model, best), best);
    }
    free(logits);
    mvq_session_destroy(session);
    mvq_model_close(model);
    return 0;
}
