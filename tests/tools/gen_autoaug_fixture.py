#!/usr/bin/python3
"""Writes tests/data/autoaug_pil.txt: what Pillow makes of every op of
AutoAugment's CIFAR-10 policy, for test_autoaug to hold lt_autoaug_op against.

The ops are the DeepVoltaire autoaugment.py functions that BALMS copies
(data/autoaugment.py), applied to two 32x32 RGB images that the C test
rebuilds from the same generator (lcg_image below). Each line is

    <op> <idx> <sign> <image> <sha256 of the planar RGB output>

for every (op, magnitude index) the 25 sub-policies use, both signs where
the op draws one, plus the extremes 0 and 9 of every op. Run with Debian's
python3-pil (Pillow 9.4 here): /usr/bin/python3 tests/tools/gen_autoaug_fixture.py
--dump DIR also writes every output as DIR/<line number>.rgb (planar) for
looking at a mismatch.
"""
import hashlib
import os
import random
import sys

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

FILL = (128, 128, 128)

RANGES = {
    "shearX": np.linspace(0, 0.3, 10),
    "shearY": np.linspace(0, 0.3, 10),
    "translateX": np.linspace(0, 150 / 331, 10),
    "translateY": np.linspace(0, 150 / 331, 10),
    "rotate": np.linspace(0, 30, 10),
    "color": np.linspace(0.0, 0.9, 10),
    "posterize": np.round(np.linspace(8, 4, 10), 0).astype(int),
    "solarize": np.linspace(256, 0, 10),
    "contrast": np.linspace(0.0, 0.9, 10),
    "sharpness": np.linspace(0.0, 0.9, 10),
    "brightness": np.linspace(0.0, 0.9, 10),
    "autocontrast": [0] * 10,
    "equalize": [0] * 10,
    "invert": [0] * 10,
}
SIGNED = {"shearX", "shearY", "translateX", "translateY", "color", "contrast", "sharpness", "brightness"}


def rotate_with_fill(img, magnitude):
    rot = img.convert("RGBA").rotate(magnitude)
    return Image.composite(rot, Image.new("RGBA", rot.size, (128,) * 4), rot).convert(img.mode)


# The policy's func table with the random sign made an argument.
FUNC = {
    "shearX": lambda img, m, s: img.transform(img.size, Image.AFFINE, (1, m * s, 0, 0, 1, 0), Image.BICUBIC, fillcolor=FILL),
    "shearY": lambda img, m, s: img.transform(img.size, Image.AFFINE, (1, 0, 0, m * s, 1, 0), Image.BICUBIC, fillcolor=FILL),
    "translateX": lambda img, m, s: img.transform(img.size, Image.AFFINE, (1, 0, m * img.size[0] * s, 0, 1, 0), fillcolor=FILL),
    "translateY": lambda img, m, s: img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, m * img.size[1] * s), fillcolor=FILL),
    "rotate": lambda img, m, s: rotate_with_fill(img, m),
    "color": lambda img, m, s: ImageEnhance.Color(img).enhance(1 + m * s),
    "posterize": lambda img, m, s: ImageOps.posterize(img, m),
    "solarize": lambda img, m, s: ImageOps.solarize(img, m),
    "contrast": lambda img, m, s: ImageEnhance.Contrast(img).enhance(1 + m * s),
    "sharpness": lambda img, m, s: ImageEnhance.Sharpness(img).enhance(1 + m * s),
    "brightness": lambda img, m, s: ImageEnhance.Brightness(img).enhance(1 + m * s),
    "autocontrast": lambda img, m, s: ImageOps.autocontrast(img),
    "equalize": lambda img, m, s: ImageOps.equalize(img),
    "invert": lambda img, m, s: ImageOps.invert(img),
}

POLICY = [
    ("invert", 7, "contrast", 6), ("rotate", 2, "translateX", 9), ("sharpness", 1, "sharpness", 3),
    ("shearY", 8, "translateY", 9), ("autocontrast", 8, "equalize", 2), ("shearY", 7, "posterize", 7),
    ("color", 3, "brightness", 7), ("sharpness", 9, "brightness", 9), ("equalize", 5, "equalize", 1),
    ("contrast", 7, "sharpness", 5), ("color", 7, "translateX", 8), ("equalize", 7, "autocontrast", 8),
    ("translateY", 3, "sharpness", 6), ("brightness", 6, "color", 8), ("solarize", 2, "invert", 3),
    ("equalize", 0, "autocontrast", 0), ("equalize", 8, "equalize", 4), ("color", 9, "equalize", 6),
    ("autocontrast", 4, "solarize", 8), ("brightness", 3, "color", 0), ("solarize", 5, "autocontrast", 3),
    ("translateY", 9, "translateY", 9), ("autocontrast", 2, "solarize", 3), ("equalize", 8, "invert", 3),
    ("translateY", 9, "autocontrast", 1),
]


def lcg_image(seed, lo, span):
    """32x32 RGB, planar: value lo + (byte of a 32-bit LCG) % span, plus a
    ramp so that the image has structure. test_autoaug.c has the same."""
    st = seed & 0xFFFFFFFF
    px = np.zeros((3, 32, 32), np.uint8)
    for c in range(3):
        for y in range(32):
            for x in range(32):
                st = (st * 1664525 + 1013904223) & 0xFFFFFFFF
                v = lo + ((st >> 24) + 3 * x + 2 * y + 40 * c) % span
                px[c, y, x] = v
    return px


def main():
    dump = None
    if len(sys.argv) == 3 and sys.argv[1] == "--dump":
        dump = sys.argv[2]
        os.makedirs(dump, exist_ok=True)
    images = [lcg_image(1, 0, 256), lcg_image(2, 60, 121)]
    cases = set()
    for p in POLICY:
        cases.add((p[0], p[1]))
        cases.add((p[2], p[3]))
    for op in RANGES:
        cases.add((op, 0))
        cases.add((op, 9))
    out = []
    for op, idx in sorted(cases):
        m = RANGES[op][idx]
        for sign in ((1, -1) if op in SIGNED else (1,)):
            for k, px in enumerate(images):
                img = Image.fromarray(np.ascontiguousarray(px.transpose(1, 2, 0)), "RGB")
                r = np.asarray(FUNC[op](img, m, sign).convert("RGB"), np.uint8).transpose(2, 0, 1)
                b = np.ascontiguousarray(r).tobytes()
                out.append("%s %d %d %d %s" % (op, idx, sign, k, hashlib.sha256(b).hexdigest()))
                if dump:
                    with open(os.path.join(dump, "%d.rgb" % len(out)), "wb") as f:
                        f.write(b)
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "data", "autoaug_pil.txt")
    with open(path, "w") as f:
        f.write("# written by tests/tools/gen_autoaug_fixture.py with Pillow %s, numpy %s\n"
                % (Image.__version__, np.__version__))
        f.write("# op idx sign image sha256(planar RGB output)\n")
        for line in out:
            f.write(line + "\n")
    print("%d cases -> %s" % (len(out), os.path.normpath(path)))


if __name__ == "__main__":
    main()
