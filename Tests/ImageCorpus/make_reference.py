#!/usr/bin/env python3
"""Builds the image-decoding conformance corpus: a peer's test images and Pillow's own decodes.

Reads two source distributions (never imports or runs code from them):
  * Pillow's sdist: every file below Tests/images whose first bytes are a JPEG, PNG or PPM/PGM
    (P2, P3, P5, P6) signature, i.e. every file mvquant would try to decode;
  * pypng's sdist: the PngSuite images held as hex strings in code/pngsuite.py (read with ast).

Writes into OUT:
  files/<source>/<path>   the images, byte for byte
  ref/<n>.rgb              Pillow's decode as 8-bit RGB, row-major (only for files Pillow decodes)
  manifest.json            one entry per image: file, format, pillow ("decoded" or "refused"),
                           reason, width, height, mode, tolerance (max |difference| allowed), rgb

Pillow's decode is Image.open(path).load() with its defaults (truncated images refused, the
decompression-bomb limit on), converted to RGB. Its 16-bit greys have no 8-bit RGB of their own
(convert("RGB") clips them), so the reference takes their meaningful 8 bits: the high byte of a
16-bit PNG sample, and round(v * 255 / 65535) of the 0..65535 samples Pillow makes from a PGM
with maxval above 255 (mvquant rescales from maxval directly, so those get 1 of tolerance).
"""
import argparse
import ast
import binascii
import io
import json
import os
import sys
import tarfile

from PIL import Image


def sniff(head: bytes):
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(head) >= 3 and head[:1] == b"P" and head[1:2] in (b"2", b"3", b"5", b"6") and head[2:3].isspace():
        return "netpbm"
    return None


def pillow_images(sdist):
    """(relative path, bytes) of the images below Tests/images in Pillow's sdist."""
    with tarfile.open(sdist) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 4 or parts[1:3] != ["Tests", "images"]:
                continue
            data = tar.extractfile(member).read()
            if sniff(data[:8]):
                yield "/".join(parts[3:]), data


def pngsuite_images(sdist):
    """(name.png, bytes) of the PngSuite images in pypng's code/pngsuite.py, read as data."""
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/code/pngsuite.py"))
        tree = ast.parse(tar.extractfile(member).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "png" for t in node.targets):
            for key, value in zip(node.value.keys, node.value.values):
                # Each value is _dehex(b"""hex digits and newlines""").
                hexdata = value.args[0].value
                yield key.value + ".png", binascii.unhexlify(hexdata.replace(b"\n", b""))
            return
    raise SystemExit("pngsuite.py: no 'png' dictionary found")


def pillow_rgb(path):
    """(mode, width, height, RGB bytes, tolerance) as Pillow decodes `path`; raises if it refuses."""
    with Image.open(path) as im:
        im.load()
        mode = im.mode
        w, h = im.size
        if mode.startswith("I;16"):
            # 16-bit PNG grey: the high byte of each sample.
            grey = bytes(v >> 8 for v in im.getdata())
            tolerance = 0
        elif mode == "I":
            # PGM with maxval > 255: Pillow holds samples rescaled to 0..65535.
            grey = bytes(min(255, round(v * 255 / 65535)) for v in im.getdata())
            tolerance = 1
        else:
            return mode, w, h, im.convert("RGB").tobytes(), None
        return mode, w, h, bytes(b for v in grey for b in (v, v, v)), tolerance


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pillow-sdist", required=True)
    ap.add_argument("--pypng-sdist", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import PIL
    sources = [("pillow", pillow_images(args.pillow_sdist)), ("pngsuite", pngsuite_images(args.pypng_sdist))]
    os.makedirs(os.path.join(args.out, "ref"), exist_ok=True)
    entries = []
    for source, images in sources:
        for rel, data in images:
            file = f"files/{source}/{rel}"
            path = os.path.join(args.out, file)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            fmt = sniff(data[:8])
            entry = {"file": file, "format": fmt}
            try:
                mode, w, h, rgb, tolerance = pillow_rgb(path)
            except Exception as e:  # Pillow refusing the file is a result, whatever the exception
                entry.update(pillow="refused", reason=f"{type(e).__name__}: {e}".replace(path, "FILE"))
            else:
                if tolerance is None:
                    tolerance = 2 if fmt == "jpeg" else 0
                ref = f"ref/{len(entries)}.rgb"
                with open(os.path.join(args.out, ref), "wb") as f:
                    f.write(rgb)
                entry.update(pillow="decoded", mode=mode, width=w, height=h, tolerance=tolerance, rgb=ref)
            entries.append(entry)
    manifest = {"pillow_version": PIL.__version__, "files": entries}
    tmp = os.path.join(args.out, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(args.out, "manifest.json"))
    decoded = sum(e["pillow"] == "decoded" for e in entries)
    print(f"image corpus: {len(entries)} files, {decoded} decoded by Pillow {PIL.__version__}, "
          f"{len(entries) - decoded} refused -> {args.out}")


if __name__ == "__main__":
    sys.exit(main())
