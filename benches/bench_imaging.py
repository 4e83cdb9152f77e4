"""Throughput of the exact image path vs the Pillow + torchvision reference.

Single thread, ~512 px JPEG q90 photographs (skimage.data, resized), one
DataCompDR-like augmentation per image (RandomResizedCrop box + 2 RandAugment
ops at magnitude 9). Also checks that every replayed image is bit-identical.

    PYTHONPATH=python python benches/bench_imaging.py [--seconds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import io
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from skimage import data as skdata

from mobileclip_fastload import _core
from mobileclip_fastload.reference import AugParams, reference_replay

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"]


def make_jpegs(long_side=512, quality=90):
    out = []
    for name in PHOTOS:
        im = Image.fromarray(getattr(skdata, name)())
        s = long_side / max(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC)
        b = io.BytesIO()
        im.save(b, "JPEG", quality=quality)
        out.append((b.getvalue(), im.size))
    return out


def rrc_box(rng, w, h):
    """torchvision RandomResizedCrop.get_params (scale 0.08-1, ratio 3/4-4/3)."""
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        ar = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(target * ar)), round(math.sqrt(target / ar))
        if 0 < cw <= w and 0 < ch <= h:
            return rng.randint(0, h - ch), rng.randint(0, w - cw), ch, cw
    return 0, 0, h, w


MAG9 = {1: 0.09, 2: 0.09, 3: 30.45, 4: 30.45, 5: 9.0, 6: 0.27, 7: 0.27, 8: 0.27, 9: 0.27, 10: 7.0, 11: 178.5, 12: 0.0, 13: 0.0}


def make_cases(jpegs, n, seed=0):
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        b, (w, h) = jpegs[i % len(jpegs)]
        ops = []
        for _ in range(2):
            op = rng.randint(0, 13)
            m = MAG9.get(op, 0.0)
            ops.append((op, -m if op <= 9 and rng.random() < 0.5 else m))
        cases.append((b, rrc_box(rng, w, h), ops))
    return cases


def rate(fn, items, seconds):
    n, t0 = 0, time.perf_counter()
    while True:
        for it in items:
            fn(it)
            n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n / dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--interpolation", default="bicubic")
    args = ap.parse_args()
    jpegs = make_jpegs()
    cases = make_cases(jpegs, 60)
    size, interp = args.size, args.interpolation

    mismatches = 0
    for b, box, ops in cases:
        ours = _core.replay_augmentation(b, *box, ops, size, interp)
        ref = reference_replay(b, AugParams(*box, tuple(ops)), size, interp)
        mismatches += int(not np.array_equal(ours, ref))
    print(f"bit-identical: {len(cases) - mismatches}/{len(cases)}")

    def pil_decode(it):
        with Image.open(io.BytesIO(it[0])) as im:
            im.convert("RGB").load()

    def ref_replay(it):
        b, box, ops = it
        reference_replay(b, AugParams(*box, tuple(ops)), size, interp)

    def ref_rrc_only(it):
        b, box, _ = it
        reference_replay(b, AugParams(*box), size, interp)

    def our_decode(it):
        _core.decode_rgb(it[0])

    def our_replay(it):
        b, box, ops = it
        _core.replay_augmentation(b, *box, ops, size, interp)

    def our_rrc_only(it):
        b, box, _ = it
        _core.replay_augmentation(b, *box, [], size, interp)

    s = args.seconds
    rows = [
        ("decode only: Pillow open+convert", rate(pil_decode, cases, s)),
        ("decode only: _core.decode_rgb", rate(our_decode, cases, s)),
        ("decode+RRC: Pillow+torchvision", rate(ref_rrc_only, cases, s)),
        ("decode+RRC: _core", rate(our_rrc_only, cases, s)),
        ("decode+RRC+2 ops: Pillow+torchvision", rate(ref_replay, cases, s)),
        ("decode+RRC+2 ops: _core", rate(our_replay, cases, s)),
    ]
    print(f"single thread, {len(jpegs)} JPEGs ~512px q90, output {size}px {interp}:")
    for name, r in rows:
        print(f"  {name:40s} {r:8.0f} img/s")

    if args.threads > 1:
        with ThreadPoolExecutor(args.threads) as pool:
            t0 = time.perf_counter()
            n = 0
            while time.perf_counter() - t0 < s:
                list(pool.map(our_replay, cases))
                n += len(cases)
            print(f"  _core replay, {args.threads} Python threads (GIL released): {n / (time.perf_counter() - t0):8.0f} img/s")


if __name__ == "__main__":
    main()
