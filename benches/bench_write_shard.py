"""Store writer throughput: `write_shard` on DataCompDR-12M-shaped samples (J=30
augmentations, S=5 synthetic captions, K=2 x D=768 float32 embeddings, ~60 kB
images), per embedding dtype, and from already-encoded input (what the
converter passes). Reports samples/s and MB/s of shard written, best of
`--repeat`. Run from the repository root:

    PYTHONPATH=python python benches/bench_write_shard.py [--samples 300 --repeat 3]

The script only uses the public API, so pointing PYTHONPATH at another checkout
measures that checkout's writer the same way.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from mobileclip_fastload.store import Sample, aug_records, write_shard


def make_samples(n: int, J: int, S: int, K: int, D: int, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        params = [[[int(rng.integers(0, 200)), int(rng.integers(0, 200)), 256, 256], [[3, 0.5]]] for _ in range(J)]
        aug, _ = aug_records(params, width=512, height=512)
        samples.append(
            Sample(
                uid=f"{i:012x}",
                image=rng.integers(0, 256, 60_000, dtype=np.uint8).tobytes(),
                width=512,
                height=512,
                orig_width=512,
                orig_height=512,
                caption=f"a photo of thing number {i}",
                caption_tokens=np.arange(49406 - 20, 49406, dtype=np.uint16),
                syn_captions=[f"synthetic caption {s} of {i}" for s in range(S)],
                syn_tokens=[np.arange(100, 130, dtype=np.uint16) for _ in range(S)],
                aug=aug,
                image_emb=rng.standard_normal((J, K * D), dtype=np.float32) / 28,
                text_emb=rng.standard_normal((1 + S, K * D), dtype=np.float32) / 28,
                sha256=bytes(32),
            )
        )
    return samples


def encoded(samples: list[Sample], dtype: str, K: int) -> list[Sample]:
    """The same samples with embeddings already in the store dtype (the converter's input)."""
    from mobileclip_fastload import store

    out = []
    for s in samples:
        if hasattr(store, "encode_embeddings"):
            (ie, iscale), (te, tscale) = (
                store.encode_embeddings(s.image_emb, dtype, K),
                store.encode_embeddings(s.text_emb, dtype, K),
            )
        else:  # older checkouts
            from mobileclip_fastload.store.embeddings import encode_embeddings

            (ie, iscale), (te, tscale) = (
                encode_embeddings(s.image_emb, dtype, K),
                encode_embeddings(s.text_emb, dtype, K),
            )
        out.append(
            Sample(
                **{**s.__dict__, "image_emb": ie, "text_emb": te, "image_emb_scale": iscale, "text_emb_scale": tscale}
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    J, S, K, D = 30, 5, 2, 768
    samples = make_samples(args.samples, J, S, K, D)
    dims = {"J": J, "S": S, "K": K, "D": D}
    print(f"write_shard, {args.samples} samples (J={J} S={S} K={K} D={D}), best of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "shard-00000.arrow")
        for dtype in ("float16", "bfloat16", "int8"):
            for label, batch in (("float32 input", samples), ("encoded input", encoded(samples, dtype, K))):
                best = float("inf")
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    info = write_shard(path, batch, dims=dims, embedding_dtype=dtype)
                    best = min(best, time.perf_counter() - t)
                print(
                    f"  {dtype:9s} {label:14s}: {args.samples / best:8.0f} samples/s  "
                    f"{info.file_bytes / best / 1e6:7.1f} MB/s  ({info.file_bytes / 1e6:.1f} MB)"
                )


if __name__ == "__main__":
    main()
