/*
 * mvquant.h: the C API of mvquant, an integer-only int8 runtime for MobileViT image classifiers.
 * C99. Link with -lmvquant (libmvquant.so, built by Targets/c-api/build.sh; the Swift runtime is
 * linked into it, so nothing else is needed at run time).
 *
 *     mvq_model *model;
 *     mvq_session *session;
 *     float logits[1000];
 *     if (mvq_model_open("model.mvq", &model) != MVQ_OK) { puts(mvq_last_error()); return 1; }
 *     mvq_session_create(model, 2, &session);
 *     if (mvq_session_run_rgb(session, rgb, width, height, 3 * width, logits, 1000) == MVQ_OK)
 *         printf("%s\n", mvq_model_label(model, argmax(logits, mvq_model_num_labels(model))));
 *     mvq_session_destroy(session);
 *     mvq_model_close(model);
 *
 * Models: a .mvq file runs in int8, a float checkpoint directory (config.json, model.safetensors,
 * preprocessor_config.json) in float32. Classification models only: a segmentation model is
 * refused (MVQ_ERROR_UNSUPPORTED). Logits are bit-identical to `mvquant infer` on the same input.
 *
 * Threads: a model is immutable and may be shared by any number of threads and sessions. A session
 * (the executor's buffers and thread pool) must be used by one thread at a time; create one
 * session per thread to run in parallel. A session keeps its model alive: mvq_model_close() may be
 * called while sessions exist, and the model is freed with the last of them.
 *
 * Errors: every function that can fail returns MVQ_OK (0) or a nonzero MVQ_ERROR_ code (functions
 * returning a pointer return NULL) and stores a one-line message for the calling thread, read with
 * mvq_last_error(). No bad argument ends the process: NULL pointers, sizes out of range, small
 * buffers, NaN pixel values, missing or damaged files are all reported this way.
 *
 * Limits (the command line's): the network input (after preprocessing, or given as pixel values)
 * has sides 1..4096 and at most 4 megapixels; RGB images given as bytes have sides 1..16384 and at
 * most 100 megapixels.
 */
#ifndef MVQUANT_H
#define MVQUANT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque handles. */
typedef struct mvq_model mvq_model;
typedef struct mvq_session mvq_session;

/* Return codes. */
enum {
    MVQ_OK = 0,
    MVQ_ERROR_INVALID_ARGUMENT = 1, /* NULL pointer, size out of range, buffer too small, bad thread count */
    MVQ_ERROR_NOT_FOUND = 2,        /* the model path does not exist */
    MVQ_ERROR_BAD_MODEL = 3,        /* damaged model file or directory, or not a MobileViT model */
    MVQ_ERROR_UNSUPPORTED = 4,      /* a valid model this API does not run (segmentation) */
    MVQ_ERROR_BAD_INPUT = 5,        /* NaN/infinite pixel values, an image file that cannot be decoded */
    MVQ_ERROR_NON_FINITE_OUTPUT = 6,/* the model's logits overflowed (a float checkpoint with huge weights) */
    MVQ_ERROR_INTERNAL = 7
};

/* The library's version, e.g. "0.1.0". Static storage. */
const char *mvq_version(void);

/* Opens a .mvq file (int8) or a float checkpoint directory. On success *model is the new model;
 * on failure *model is set to NULL (when model is not NULL) and an error code is returned. */
int mvq_model_open(const char *path, mvq_model **model);

/* Releases the model (freed when its last session is destroyed too). NULL: no-op. */
void mvq_model_close(mvq_model *model);

/* Number of classes (the number of logits a run writes); -1 when model is NULL. */
int mvq_model_num_labels(const mvq_model *model);

/* The name of class `index`, NUL-terminated UTF-8, valid until the model is freed; NULL when
 * index is out of range or model is NULL. */
const char *mvq_model_label(const mvq_model *model, int index);

/* The size every image is preprocessed to (the preprocessor's centre crop), or 0 x 0 when the
 * preprocessor does not crop (the size then follows each image). */
int mvq_model_input_size(const mvq_model *model, int *height, int *width);

/* A session running `model` with `threads` threads (1..256; the float path uses one). On failure
 * *session is set to NULL. */
int mvq_session_create(mvq_model *model, int threads, mvq_session **session);

/* Frees the session. NULL: no-op. */
void mvq_session_destroy(mvq_session *session);

/* Classifies an RGB image in memory: 8-bit R, G, B interleaved (HWC), row r starting at
 * rgb + r * row_bytes (row_bytes >= 3 * width). The model's preprocessing is applied (resize,
 * centre crop, rescale, channel order), as `mvquant classify` does on a decoded file. Writes
 * mvq_model_num_labels() logits; capacity (floats available at logits) must be at least that. */
int mvq_session_run_rgb(mvq_session *session, const uint8_t *rgb, int width, int height, int row_bytes,
                        float *logits, int capacity);

/* Runs the network on pixel_values as the model sees them: float32 NCHW [1, 3, height, width]
 * (PyTorch layout, after preprocessing; for the usual checkpoints BGR in [0, 1]), e.g. what
 * `mvquant preprocess` writes. NaN or infinite values are refused (MVQ_ERROR_BAD_INPUT). */
int mvq_session_run_pixels(mvq_session *session, const float *nchw, int height, int width,
                           float *logits, int capacity);

/* Decodes an image file (JPEG, PNG, PPM/PGM) and classifies it as mvq_session_run_rgb does. */
int mvq_session_run_file(mvq_session *session, const char *path, float *logits, int capacity);

/* The calling thread's last failure, one line; "" when none yet. Valid until this thread's next
 * failing call (or its exit). Successful calls leave it unchanged. */
const char *mvq_last_error(void);

/* The name of a return code, e.g. "MVQ_ERROR_BAD_MODEL". Static storage. */
const char *mvq_error_name(int code);

#ifdef __cplusplus
}
#endif

#endif /* MVQUANT_H */
