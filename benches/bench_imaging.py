"""Throughput of the exact image path vs the Pillow + torchvision reference.

Single thread, ~512 px JPEG q90 photographs (skimage.data, resized), one
DataCompDR augmentation per image (RandomResizedCrop box + 2 RandAugment ops
at magnitude 9, drawn by ``reinforce.augmentation``). Also checks that every
replayed image is bit-identical.

    PYTHONPATH=python python benches/bench_imaging.py [--seconds 3] [--num-threads 2]
    PYTHONPATH=python python benches/bench_imaging.py --soak 3000   # exactness soak only
"""

from __future__ import annotations

import argparse
import io
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mobileclip_fastload import _core
from mobileclip_fastload.reference import AugParams, reference_replay
from mobileclip_fastload.reinforce.augmentation import draw_entry, rrc_params, torch_generator
from PIL import Image
from skimage import data as skdata

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


def make_cases(jpegs, n, seed=0):
    """(jpeg, box, ops): DataCompDR entries (RandomResizedCrop box + RandAugment(2, 9) ops) drawn
    as reinforcement draws them."""
    g = torch_generator(seed)
    cases = []
    for i in range(n):
        b, (w, h) = jpegs[i % len(jpegs)]
        box, ops = draw_entry(g, w, h)
        cases.append((b, tuple(box), [tuple(o) for o in ops]))
    return cases


SOAK_PHOTOS = [*PHOTOS, "camera", "page", "moon"]


def soak(n, seed):
    """Random DataCompDR-like and adversarial entries on many JPEG flavours;
    counts outputs that differ from the reference at all."""
    import torch

    rng = random.Random(seed)
    g = torch_generator(seed)
    images = []
    for name in SOAK_PHOTOS:
        im = Image.fromarray(getattr(skdata, name)())
        for long_side in (512, 333):
            s = long_side / max(im.size)
            j = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BICUBIC)
            for q, ss in ((90, 2), (75, 1), (95, 0)):
                b = io.BytesIO()
                j.save(b, "JPEG", quality=q, subsampling=ss, progressive=rng.random() < 0.3)
                images.append((b.getvalue(), j.size))
    signed = {1: 0.3, 2: 0.3, 5: 30.0, 6: 0.9, 7: 0.9, 8: 0.9, 9: 0.9}
    bad = 0
    for _ in range(n):
        b, (w, h) = rng.choice(images)
        size = rng.choice([224, 256, rng.randint(1, 400)])
        if rng.random() < 0.7:
            top, left, ch, cw = rrc_params(g, w, h)
        else:
            ch, cw = rng.randint(1, 2 * h), rng.randint(1, 2 * w)
            top, left = rng.randint(-h, h), rng.randint(-w, w)
        ops = []
        for _ in range(rng.randint(0, 2)):
            op, k = rng.randint(0, 13), rng.randint(0, 30)
            if op in signed:
                m = float(torch.linspace(0.0, signed[op], 31)[k]) * rng.choice([1, -1])
            elif op in (3, 4):
                m = float(torch.linspace(0.0, 150.0 / 331.0 * size, 31)[k]) * rng.choice([1, -1])
            elif op == 10:
                m = float(8 - round(k / 7.5))
            elif op == 11:
                m = float(torch.linspace(255.0, 0.0, 31)[k])
            else:
                m = 0.0
            ops.append((op, m))
        interp, hflip = rng.choice(["bilinear", "bicubic"]), rng.random() < 0.3
        ours = _core.replay_augmentation(b, top, left, ch, cw, ops, size, interp, hflip)
        ref = reference_replay(b, AugParams(top, left, ch, cw, tuple(ops), False, hflip), size, interp)
        if not np.array_equal(ours, ref):
            bad += 1
            print("MISMATCH", (w, h), (top, left, ch, cw), ops, size, interp, hflip, flush=True)
    print(f"soak: {bad} mismatches in {n} replays (seed {seed})")
    return bad


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def fast_mode(seconds, size, interp):
    """Speed and PSNR of the DCT-scaled (inexact) mode against the exact replay,
    on 512 px and 1024 px JPEGs, RandomResizedCrop boxes, no ops."""
    for long_side in (512, 1024):
        jpegs = make_jpegs(long_side)
        cases = make_cases(jpegs, 60, seed=1)
        exact = [_core.replay_augmentation(b, *box, [], size, interp) for b, box, _ in cases]
        print(f"fast mode, {long_side} px JPEGs q90 -> {size} px {interp}:")
        base = rate(lambda it: _core.replay_augmentation(it[0], *it[1], [], size, interp), cases, seconds)
        print(f"  exact                        {base:8.0f} img/s")
        for ratio in (1.0, 1.5, 2.0):
            outs = [_core.replay_augmentation(b, *box, [], size, interp, dct_scaling=ratio) for b, box, _ in cases]
            scores = [psnr(o, e) for o, e in zip(outs, exact)]
            changed = [p for p in scores if p != float("inf")]
            r = rate(
                lambda it, ratio=ratio: _core.replay_augmentation(it[0], *it[1], [], size, interp, dct_scaling=ratio),
                cases,
                seconds,
            )
            mean = f"{np.mean(changed):.1f}" if changed else "-"
            low = f"{min(changed):.1f}" if changed else "-"
            print(
                f"  dct_scaling={ratio:<4} {r:8.0f} img/s   scaled {len(changed)}/{len(cases)} crops,"
                f" PSNR vs exact mean {mean} dB, min {low} dB"
            )


def compare_interpolations(seconds, size, rounds=3):
    """Bicubic (the training default) against bilinear, interleaved rounds on the same
    crops and ops, so a shared machine's load hits both alike."""
    cases = make_cases(make_jpegs(), 60)
    rates = {"bilinear": [], "bicubic": []}
    for _ in range(rounds):
        for interp in rates:
            rates[interp].append(
                rate(
                    lambda it, interp=interp: _core.replay_augmentation(it[0], *it[1], it[2], size, interp),
                    cases,
                    seconds,
                )
            )
    print(
        f"decode+RRC+ops -> {size}px, 1 thread, img/s per round: "
        + ", ".join(f"{k} {' '.join(f'{r:.0f}' for r in v)}" for k, v in rates.items())
    )
    print(
        "bicubic / bilinear per round: "
        + " ".join(f"{bicubic / bilinear:.2f}" for bicubic, bilinear in zip(rates["bicubic"], rates["bilinear"]))
    )


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
    ap.add_argument("--num-threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--interpolation", default="bicubic")
    ap.add_argument("--soak", type=int, default=0, help="only run N random exactness checks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fast-mode", action="store_true", help="only measure the inexact DCT-scaled mode")
    ap.add_argument("--compare-interpolations", action="store_true", help="only bicubic vs bilinear, interleaved")
    args = ap.parse_args()
    if args.compare_interpolations:
        compare_interpolations(args.seconds, args.size)
        return
    if args.fast_mode:
        fast_mode(args.seconds, args.size, args.interpolation)
        return
    if args.soak:
        raise SystemExit(1 if soak(args.soak, args.seed) else 0)
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

    def our_replay_full_decode(it):
        b, box, ops = it
        _core.replay_augmentation(b, *box, ops, size, interp, partial_decode=False)

    s = args.seconds
    rows = [
        ("decode only: Pillow open+convert", rate(pil_decode, cases, s)),
        ("decode only: _core.decode_rgb", rate(our_decode, cases, s)),
        ("decode+RRC: Pillow+torchvision", rate(ref_rrc_only, cases, s)),
        ("decode+RRC: _core", rate(our_rrc_only, cases, s)),
        ("decode+RRC+2 ops: Pillow+torchvision", rate(ref_replay, cases, s)),
        ("decode+RRC+2 ops: _core, whole-JPEG decode", rate(our_replay_full_decode, cases, s)),
        ("decode+RRC+2 ops: _core", rate(our_replay, cases, s)),
    ]
    print(f"single thread, {len(jpegs)} JPEGs ~512px q90, output {size}px {interp}:")
    for name, r in rows:
        print(f"  {name:44s} {r:8.0f} img/s")

    if args.num_threads > 1:
        with ThreadPoolExecutor(args.num_threads) as pool:
            t0 = time.perf_counter()
            n = 0
            while time.perf_counter() - t0 < s:
                list(pool.map(our_replay, cases))
                n += len(cases)
            print(
                f"  _core replay, {args.num_threads} Python threads (GIL"
                f" released): {n / (time.perf_counter() - t0):8.0f} img/s"
            )


if __name__ == "__main__":
    main()
