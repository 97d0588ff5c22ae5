/*
 * api_test.c: checks the C API of libmvquant from C. Exits 0 when every check passes, 1 otherwise.
 *
 *   cc -std=c99 -Wall -Werror -pthread -I OUT/include api_test.c -L OUT/lib -lmvquant -o api_test
 *   ./api_test MODEL IMAGE.ppm [SEGMENTATION_MODEL]
 *
 * 1. Two threads, two sessions, one shared model: each runs the image 20 times and every result
 *    equals the main thread's logits byte for byte.
 * 2. Every error path: NULL pointers, zero/negative/huge sizes, row_bytes < 3 * width, capacity
 *    below the label count, NaN pixel values, missing and damaged files (and a segmentation model
 *    when given): each returns its nonzero code, sets *model or *session to NULL, leaves a one-line
 *    message, and the process goes on.
 * 3. The last error is per thread and stays valid until that thread's next failing call.
 */
#define _POSIX_C_SOURCE 200809L
#include <mvquant.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            failures++;                                    \
            fprintf(stderr, "FAIL line %d: ", __LINE__);   \
            fprintf(stderr, __VA_ARGS__);                  \
            fprintf(stderr, "\n");                         \
        }                                                  \
    } while (0)

/* The call returned `expected` and left a one-line message containing `fragment`. */
static void expect_error(int got, int expected, const char *fragment, int line) {
    const char *message = mvq_last_error();
    if (got != expected || !strstr(message, fragment) || strchr(message, '\n')) {
        failures++;
        fprintf(stderr, "FAIL line %d: got %s (%d) \"%s\", expected %s with \"%s\"\n", line, mvq_error_name(got), got,
                message, mvq_error_name(expected), fragment);
    } else {
        printf("  ok  %-28s %s\n", mvq_error_name(got), message);
    }
}
#define EXPECT(call, code, fragment) expect_error((call), (code), (fragment), __LINE__)

#include "ppm.h"

enum { MAX_LABELS = 1024, RUNS = 20 };

struct job {
    mvq_model *model;
    const unsigned char *rgb;
    int width, height, labels, threads;
    const float *expected;
    int mismatches, errors;
};

static void *worker(void *arg) {
    struct job *job = arg;
    mvq_session *session = NULL;
    float logits[MAX_LABELS];
    int i;
    if (mvq_session_create(job->model, job->threads, &session) != MVQ_OK) {
        job->errors++;
        return NULL;
    }
    for (i = 0; i < RUNS; i++) {
        if (mvq_session_run_rgb(session, job->rgb, job->width, job->height, 3 * job->width, logits, MAX_LABELS) != MVQ_OK)
            job->errors++;
        else if (memcmp(logits, job->expected, sizeof(float) * (size_t)job->labels) != 0)
            job->mismatches++;
    }
    mvq_session_destroy(session);
    return NULL;
}

struct error_probe {
    char seen_before[512];
    char seen_after[512];
};

static void *other_thread_error(void *arg) {
    struct error_probe *p = arg;
    mvq_model *m = NULL;
    snprintf(p->seen_before, sizeof p->seen_before, "%s", mvq_last_error());
    (void)mvq_model_open("/nonexistent/other-thread.mvq", &m);
    snprintf(p->seen_after, sizeof p->seen_after, "%s", mvq_last_error());
    return NULL;
}

int main(int argc, char **argv) {
    mvq_model *model = NULL, *m = NULL;
    mvq_session *session = NULL, *s = NULL;
    unsigned char *rgb;
    int width, height, n, i;
    float expected[MAX_LABELS], logits[MAX_LABELS];
    float *pixels;
    pthread_t threads[2];
    struct job jobs[2];
    const char *mine;
    struct error_probe probe;
    FILE *f;

    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL IMAGE.ppm [SEGMENTATION_MODEL]\n", argv[0]);
        return 2;
    }
    rgb = read_ppm(argv[2], &width, &height);
    if (!rgb) {
        fprintf(stderr, "%s: not a P6 PPM\n", argv[2]);
        return 2;
    }
    printf("mvquant %s, model %s\n", mvq_version(), argv[1]);
    if (mvq_model_open(argv[1], &model) != MVQ_OK) {
        fprintf(stderr, "%s\n", mvq_last_error());
        return 1;
    }
    n = mvq_model_num_labels(model);
    CHECK(n > 0 && n <= MAX_LABELS, "num_labels %d", n);
    CHECK(mvq_session_create(model, 1, &session) == MVQ_OK, "session: %s", mvq_last_error());
    CHECK(mvq_session_run_rgb(session, rgb, width, height, 3 * width, expected, n) == MVQ_OK, "run: %s", mvq_last_error());

    /* 1. Two threads, one model. */
    for (i = 0; i < 2; i++) {
        jobs[i].model = model;
        jobs[i].rgb = rgb;
        jobs[i].width = width;
        jobs[i].height = height;
        jobs[i].labels = n;
        jobs[i].threads = 1 + i;
        jobs[i].expected = expected;
        jobs[i].mismatches = jobs[i].errors = 0;
        CHECK(pthread_create(&threads[i], NULL, worker, &jobs[i]) == 0, "pthread_create");
    }
    for (i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        CHECK(jobs[i].errors == 0 && jobs[i].mismatches == 0, "thread %d: %d errors, %d of %d runs differ", i,
              jobs[i].errors, jobs[i].mismatches, RUNS);
    }
    printf("  ok  two threads, one model: %d runs each, logits identical to the main thread's\n", RUNS);

    /* 2. Error paths. */
    m = (mvq_model *)&n;
    EXPECT(mvq_model_open(NULL, &m), MVQ_ERROR_INVALID_ARGUMENT, "path is NULL");
    CHECK(m == NULL, "*model not NULL after a failure");
    EXPECT(mvq_model_open(argv[1], NULL), MVQ_ERROR_INVALID_ARGUMENT, "model is NULL");
    m = (mvq_model *)&n;
    EXPECT(mvq_model_open("/nonexistent/model.mvq", &m), MVQ_ERROR_NOT_FOUND, "no such file");
    CHECK(m == NULL, "*model not NULL after a failure");
    f = fopen("api_test_corrupt.mvq", "wb");
    if (f) {
        fputs("MVQUANT", f);
        fputc(0, f);
        for (i = 0; i < 200; i++) fputc(i, f);
        fclose(f);
    }
    EXPECT(mvq_model_open("api_test_corrupt.mvq", &m), MVQ_ERROR_BAD_MODEL, "api_test_corrupt.mvq");
    CHECK(m == NULL, "*model not NULL after a failure");
    remove("api_test_corrupt.mvq");
    if (argc > 3) {
        EXPECT(mvq_model_open(argv[3], &m), MVQ_ERROR_UNSUPPORTED, "segmentation");
        CHECK(m == NULL, "*model not NULL after a failure");
    }
    mvq_model_close(NULL);
    mvq_session_destroy(NULL);
    CHECK(mvq_model_num_labels(NULL) == -1, "num_labels(NULL)");
    CHECK(mvq_model_label(NULL, 0) == NULL, "label(NULL, 0)");
    CHECK(mvq_model_label(model, n) == NULL, "label(model, n)");
    CHECK(mvq_model_label(model, -1) == NULL, "label(model, -1)");
    CHECK(mvq_model_label(model, 0) != NULL && mvq_model_label(model, 0) == mvq_model_label(model, 0), "label(model, 0) not stable");
    s = (mvq_session *)&n;
    EXPECT(mvq_session_create(model, 0, &s), MVQ_ERROR_INVALID_ARGUMENT, "threads 0");
    CHECK(s == NULL, "*session not NULL after a failure");
    EXPECT(mvq_session_create(model, -3, &s), MVQ_ERROR_INVALID_ARGUMENT, "threads -3");
    EXPECT(mvq_session_create(NULL, 1, &s), MVQ_ERROR_INVALID_ARGUMENT, "model is NULL");
    EXPECT(mvq_session_create(model, 1, NULL), MVQ_ERROR_INVALID_ARGUMENT, "session is NULL");

    EXPECT(mvq_session_run_rgb(NULL, rgb, width, height, 3 * width, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "session is NULL");
    EXPECT(mvq_session_run_rgb(session, NULL, width, height, 3 * width, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "rgb is NULL");
    EXPECT(mvq_session_run_rgb(session, rgb, width, height, 3 * width, NULL, n), MVQ_ERROR_INVALID_ARGUMENT, "logits is NULL");
    EXPECT(mvq_session_run_rgb(session, rgb, width, height, 3 * width, logits, n - 1), MVQ_ERROR_INVALID_ARGUMENT, "capacity");
    EXPECT(mvq_session_run_rgb(session, rgb, width, height, 3 * width, logits, 0), MVQ_ERROR_INVALID_ARGUMENT, "capacity");
    EXPECT(mvq_session_run_rgb(session, rgb, 0, height, 3 * width, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "image size");
    EXPECT(mvq_session_run_rgb(session, rgb, width, -1, 3 * width, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "image size");
    EXPECT(mvq_session_run_rgb(session, rgb, width, height, 3 * width - 1, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "row_bytes");
    EXPECT(mvq_session_run_rgb(session, rgb, width, height, -3, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "row_bytes");
    EXPECT(mvq_session_run_rgb(session, rgb, 1 << 20, 1, 3 << 20, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "image size");
    EXPECT(mvq_session_run_rgb(session, rgb, 16000, 16000, 48000, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "image size");

    pixels = calloc(3 * 64 * 64, sizeof(float));
    CHECK(mvq_session_run_pixels(session, pixels, 64, 64, logits, n) == MVQ_OK, "run_pixels: %s", mvq_last_error());
    EXPECT(mvq_session_run_pixels(NULL, pixels, 64, 64, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "session is NULL");
    EXPECT(mvq_session_run_pixels(session, NULL, 64, 64, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "nchw is NULL");
    EXPECT(mvq_session_run_pixels(session, pixels, 64, 64, NULL, n), MVQ_ERROR_INVALID_ARGUMENT, "logits is NULL");
    EXPECT(mvq_session_run_pixels(session, pixels, 64, 64, logits, n - 1), MVQ_ERROR_INVALID_ARGUMENT, "capacity");
    EXPECT(mvq_session_run_pixels(session, pixels, 0, 64, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "input size");
    EXPECT(mvq_session_run_pixels(session, pixels, 64, -64, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "input size");
    EXPECT(mvq_session_run_pixels(session, pixels, 4097, 16, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "input size");
    EXPECT(mvq_session_run_pixels(session, pixels, 4096, 4096, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "input size");
    EXPECT(mvq_session_run_pixels(session, pixels, 2147483647, 2147483647, logits, n), MVQ_ERROR_INVALID_ARGUMENT, "input size");
    {
        /* NaN without <math.h>: 0/0 in a volatile is not constant-folded into a warning. */
        volatile float zero = 0;
        pixels[1000] = zero / zero;
    }
    EXPECT(mvq_session_run_pixels(session, pixels, 64, 64, logits, n), MVQ_ERROR_BAD_INPUT, "NaN");
    free(pixels);
    EXPECT(mvq_session_run_file(session, "/nonexistent/image.png", logits, n), MVQ_ERROR_BAD_INPUT, "image.png");

    /* 3. The last error belongs to the thread, and its pointer stays valid. */
    EXPECT(mvq_model_open("/nonexistent/main-thread.mvq", &m), MVQ_ERROR_NOT_FOUND, "main-thread.mvq");
    mine = mvq_last_error();
    pthread_create(&threads[0], NULL, other_thread_error, &probe);
    pthread_join(threads[0], NULL);
    CHECK(strcmp(probe.seen_before, "") == 0, "a new thread's last error is \"%s\", expected \"\"", probe.seen_before);
    CHECK(strstr(probe.seen_after, "other-thread.mvq") != NULL, "other thread saw \"%s\"", probe.seen_after);
    CHECK(strstr(mine, "main-thread.mvq") != NULL && mine == mvq_last_error(), "main thread's message changed: \"%s\"", mine);
    /* Successful calls leave it unchanged. */
    CHECK(mvq_session_run_rgb(session, rgb, width, height, 3 * width, logits, n) == MVQ_OK, "run: %s", mvq_last_error());
    CHECK(mine == mvq_last_error(), "a successful call changed the last error");
    printf("  ok  the last error is per thread and stable until the next failure\n");

    /* A session keeps its model alive after mvq_model_close. */
    mvq_model_close(model);
    CHECK(mvq_session_run_rgb(session, rgb, width, height, 3 * width, logits, n) == MVQ_OK, "run after close: %s", mvq_last_error());
    CHECK(memcmp(logits, expected, sizeof(float) * (size_t)n) == 0, "logits changed after mvq_model_close");
    mvq_session_destroy(session);
    free(rgb);
    if (failures) {
        fprintf(stderr, "api_test: %d check(s) FAILED\n", failures);
        return 1;
    }
    printf("api_test: all checks passed\n");
    return 0;
}
