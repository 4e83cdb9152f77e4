"""Replaying J augmentations of an image: one decode for all (`_core.replay_augmentations`, what
`reinforce` uses) against one decode per augmentation (`_core.replay_augmentation` per record),
interleaved rounds on the same images, augmented images per CPU-second of this thread.

    PYTHONPATH=python python3 benches/bench_replay_one_decode.py
"""

import sys
import time

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bench_reinforce import sample_pairs
from mobileclip_fastload import _core
from mobileclip_fastload.ingest.images import check_image
from mobileclip_fastload.reinforce.augmentation import draw_augmentations
from mobileclip_fastload.reinforce.prepare import find_image

samples = sample_pairs(48, 512)
J = 30
items = []
for s in samples:
    found = find_image(s.members)
    if found is None:
        continue
    data = found[1]
    c = check_image(data)
    es = draw_augmentations(0, s.key, J, c.width, c.height)
    items.append(
        (
            data,
            [None if e is None else (e[0][0], e[0][1], e[0][2], e[0][3], [tuple(o) for o in e[1]], False) for e in es],
        )
    )


def each():
    for data, es in items:
        for e in es:
            if e is None:
                continue
            _core.replay_augmentation(data, *e[:5], 224, "bicubic", e[5])


def many():
    for data, es in items:
        _core.replay_augmentations(data, [e for e in es if e is not None], 224, "bicubic")


n = sum(1 for _, es in items for e in es if e is not None)
res = {"each": [], "many": []}
for _ in range(3):
    for name, f in (("each", each), ("many", many)):
        t0 = time.thread_time()
        f()
        res[name].append(n / (time.thread_time() - t0))
print(
    len(items), "images,", n, "augmentations at 224 px bicubic; augmented images per CPU-second (3 interleaved rounds):"
)
for k, v in res.items():
    print(f"  {k}: {[round(x) for x in v]}  median {np.median(v):.0f}")
print(f"  ratio many/each (medians): {np.median(res['many']) / np.median(res['each']):.2f}x")
