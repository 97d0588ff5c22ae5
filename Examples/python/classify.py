#!/usr/bin/env python3
"""Classify a binary PPM (P6) with libmvquant through ctypes (standard library only).

    python3 classify.py [--lib OUT/lib/libmvquant.so] [--threads N] [--logits OUT.f32] MODEL IMAGE.ppm

MODEL is a .mvq file (int8) or a float checkpoint directory. Prints the top 5 as
`mvquant classify` does; --logits writes the logits as raw float32. The library is found with
--lib, else $MVQUANT_LIB, else the loader's search path (libmvquant.so).
"""
import argparse
import ctypes
import math
import os
import sys


def load_library(path):
    lib = ctypes.CDLL(path or os.environ.get("MVQUANT_LIB") or "libmvquant.so")
    c_int, c_char_p, c_void_p = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p
    f32p = ctypes.POINTER(ctypes.c_float)
    lib.mvq_version.restype = c_char_p
    lib.mvq_last_error.restype = c_char_p
    lib.mvq_error_name.restype = c_char_p
    lib.mvq_error_name.argtypes = [c_int]
    lib.mvq_model_open.argtypes = [c_char_p, ctypes.POINTER(c_void_p)]
    lib.mvq_model_close.argtypes = [c_void_p]
    lib.mvq_model_num_labels.argtypes = [c_void_p]
    lib.mvq_model_label.argtypes = [c_void_p, c_int]
    lib.mvq_model_label.restype = c_char_p
    lib.mvq_session_create.argtypes = [c_void_p, c_int, ctypes.POINTER(c_void_p)]
    lib.mvq_session_destroy.argtypes = [c_void_p]
    lib.mvq_session_run_rgb.argtypes = [c_void_p, c_char_p, c_int, c_int, c_int, f32p, c_int]
    lib.mvq_session_run_pixels.argtypes = [c_void_p, f32p, c_int, c_int, f32p, c_int]
    return lib


def read_ppm(path):
    """(width, height, bytes) of a P6 PPM with maxval 255."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos])
    if fields[0] != b"P6" or int(fields[3]) != 255:
        raise ValueError(f"{path}: not a binary PPM (P6, maxval 255)")
    width, height = int(fields[1]), int(fields[2])
    pixels = data[pos + 1:pos + 1 + 3 * width * height]
    if len(pixels) != 3 * width * height:
        raise ValueError(f"{path}: truncated")
    return width, height, pixels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("image")
    parser.add_argument("--lib")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--logits")
    args = parser.parse_args()
    lib = load_library(args.lib)

    def check(status):
        if status != 0:
            sys.exit(f"{lib.mvq_error_name(status).decode()}: {lib.mvq_last_error().decode()}")

    model, session = ctypes.c_void_p(), ctypes.c_void_p()
    check(lib.mvq_model_open(args.model.encode(), ctypes.byref(model)))
    try:
        check(lib.mvq_session_create(model, args.threads, ctypes.byref(session)))
        n = lib.mvq_model_num_labels(model)
        logits = (ctypes.c_float * n)()
        width, height, pixels = read_ppm(args.image)
        check(lib.mvq_session_run_rgb(session, pixels, width, height, 3 * width, logits, n))
        if args.logits:
            with open(args.logits, "wb") as f:
                f.write(bytes(logits))
        top = max(logits)
        e = [math.exp(v - top) for v in logits]
        total = sum(e)
        for i in sorted(range(n), key=lambda i: (-logits[i], i))[:5]:
            print(f"  {100 * e[i] / total:6.2f}%  {lib.mvq_model_label(model, i).decode()} ({i})")
    finally:
        lib.mvq_session_destroy(session)
        lib.mvq_model_close(model)


if __name__ == "__main__":
    main()
