#!/usr/bin/env python3
"""mvquant against ONNX Runtime on the same checkpoints, measured in one run.

For each checkpoint (default: MobileViT XXS, XS, S at 256x256 from ../shared/models/reference)
and thread count (default 1 and 2) it measures, interleaved round by round so that the shared
machine's load affects every contestant alike:
  - mvquant int8 (.mvq calibrated once, cached) and mvquant float32: `mvquant bench --json`
  - ONNX Runtime fp32 and static int8 (QDQ, per-channel): ../shared/anchors/ort_anchor.py
and prints a Markdown table of the medians (of each round's median) with the ratios the README
reports. Needs a release build (`swift build -c release`) and, for ORT,
`pip install torch transformers onnx onnxruntime pillow numpy`.

Usage: python3 Targets/bench/compare_ort.py [--archs xxs xs s] [--models NAME...] [--threads 1 2]
                                             [--rounds 3] [--iterations 20] [--size 256] [--json OUT]
--models takes checkpoint folder names under ../shared/models/reference instead of --archs, e.g.
`--models deeplabv3_mobilevit_xxs --size 512` for segmentation (latency includes the label map).
The table names the ISA the int8 kernels ran on (`mvquant bench --verbose` says why).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("MVQUANT_SHARED", os.path.join(ROOT, "..", "shared"))
MVQUANT = os.path.join(ROOT, ".build", "release", "mvquant")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def mvquant_bench(model, size, threads, iterations):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        run([MVQUANT, "bench", "--model", model, "--size", f"{size}x{size}", "--threads", str(threads),
             "--iterations", str(iterations), "--warmup", "3", "--json", f.name])
        return json.load(open(f.name))


def ort_bench(ckpt, size, threads, iterations, work):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        run([sys.executable, os.path.join(SHARED, "anchors", "ort_anchor.py"), ckpt, "--size", str(size),
             "--threads", str(threads), "--iters", str(iterations), "--work", work, "--json", f.name])
        return json.load(open(f.name))["latency_ms"][f"threads{threads}"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", nargs="+", default=["xxs", "xs", "s"])
    ap.add_argument("--models", nargs="+", help="checkpoint folders under ../shared/models/reference (instead of --archs)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--calib", default=os.path.join(SHARED, "data", "cifar10", "calib"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "mvquant_compare"))
    ap.add_argument("--json")
    a = ap.parse_args()
    if not os.path.exists(MVQUANT):
        sys.exit(f"{MVQUANT} not found: run `swift build -c release` first")
    os.makedirs(a.work, exist_ok=True)
    rows, report = [], []
    names = a.models or [f"mobilevit_{arch}" for arch in a.archs]
    for name in names:
        arch = name.replace("mobilevit_", "")
        ckpt = os.path.join(SHARED, "models", "reference", name)
        mvq = os.path.join(a.work, f"{name}_{a.size}.mvq")
        if not os.path.exists(mvq):
            run([MVQUANT, "calibrate", "--model", ckpt, "--images", a.calib, "--count", "64", "--size",
                 f"{a.size}x{a.size}", "--no-eval", "--report-images", "0", "--output", mvq])
        for t in a.threads:
            samples = {"mvq_int8": [], "mvq_fp32": [], "ort_fp32": [], "ort_int8": []}
            rss = 0
            for _ in range(a.rounds):
                b = mvquant_bench(mvq, a.size, t, a.iterations)
                samples["mvq_int8"].append(b["median_ms"]); rss = b["peak_rss_bytes"]; macs = b["macs"]; isa = b.get("isa", "?")
                samples["mvq_fp32"].append(mvquant_bench(ckpt, a.size, t, a.iterations)["median_ms"])
                o = ort_bench(ckpt, a.size, t, a.iterations, a.work)
                samples["ort_fp32"].append(o["fp32_median"]); samples["ort_int8"].append(o["int8_median"])
            m = {k: statistics.median(v) for k, v in samples.items()}
            entry = dict(arch=arch, isa=isa, threads=t, size=a.size, macs=macs, peak_rss_bytes=rss, **m,
                         int8_vs_ort_int8=m["mvq_int8"] / m["ort_int8"], int8_vs_ort_fp32=m["mvq_int8"] / m["ort_fp32"],
                         fp32_vs_ort_fp32=m["mvq_fp32"] / m["ort_fp32"], gmacs_int8=macs / m["mvq_int8"] / 1e6)
            report.append(entry)
            rows.append(f"| {arch.upper()} | {isa} | {t} | {m['mvq_int8']:.2f} | {m['mvq_fp32']:.2f} | {m['ort_int8']:.2f} | "
                        f"{m['ort_fp32']:.2f} | {entry['int8_vs_ort_int8']:.2f} | {entry['int8_vs_ort_fp32']:.2f} | "
                        f"{entry['fp32_vs_ort_fp32']:.2f} | {entry['gmacs_int8']:.1f} | {rss / 2**20:.1f} |")
            print(rows[-1], flush=True)
    print(f"\n{', '.join(names)} at {a.size}x{a.size}, medians of {a.rounds} interleaved rounds x {a.iterations} runs (ms)\n")
    print("| model | int8 ISA | threads | mvquant int8 | mvquant fp32 | ORT int8 | ORT fp32 | int8/ORT int8 | int8/ORT fp32 | fp32/ORT fp32 | int8 GMAC/s | int8 peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if a.json:
        json.dump(report, open(a.json, "w"), indent=2)


main()
