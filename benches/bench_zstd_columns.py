"""What zstd would save per store column, on a realistic shard.

The shard is written by the real writer: real-photo JPEGs (random windows of
real photographs, 48-320 px, as `testing.synthetic_store`), L2-normalised
teacher embeddings stored as float16 (J=30, S=5, K=2, D=768 as DataCompDR-12M;
random directions: real teacher embeddings are dense floats whose fp16 bytes
look the same to a byte-level compressor), English-like captions from
`testing.datacompdr` tokenised with the real CLIP BPE, and augmentation
records drawn as torchvision draws them. Each column's byte range in the Arrow
body (the same ranges the manifest checksums) is compressed whole with python
`zstandard` at levels 1, 3 and 9; per-sample-chunk numbers would only be worse.

Run: PYTHONPATH=python python benches/bench_zstd_columns.py [--samples 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import zstandard

J, S, K, D = 30, 5, 2, 768


def write_shard(path: Path, n: int) -> Path:
    from mobileclip_fastload.store import Sample, StoreWriter
    from mobileclip_fastload.testing.datacompdr import _caption, normalised_embeddings
    from mobileclip_fastload.testing.synthetic_store import photo_jpeg, random_aug_records
    from mobileclip_fastload.tokenizer import tokenize

    rng = np.random.default_rng(0)
    with StoreWriter(path, J=J, S=S, K=K, D=D, target_shard_bytes=1 << 40) as w:
        for _ in range(n):
            jpeg, width, height = photo_jpeg(rng, min_side=128, max_side=512)
            caption = _caption(rng)
            syn = [_caption(rng) for _ in range(S)]
            w.add(
                Sample(
                    uid=f"{rng.integers(1 << 63):032x}",
                    image=jpeg,
                    width=width,
                    height=height,
                    orig_width=width,
                    orig_height=height,
                    caption=caption,
                    caption_tokens=tokenize(caption),
                    syn_captions=syn,
                    syn_tokens=[tokenize(c) for c in syn],
                    aug=random_aug_records(rng, J, width, height),
                    image_emb=normalised_embeddings(rng, J, K, D),
                    text_emb=normalised_embeddings(rng, 1 + S, K, D),
                    sha256=None,
                    flags=0,
                )
            )
    return path / "shard-00000.arrow"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=200)
    args = p.parse_args()
    from mobileclip_fastload import _core

    with tempfile.TemporaryDirectory() as tmp:
        shard = write_shard(Path(tmp) / "store", args.samples)
        data = shard.read_bytes()
        table = pa.ipc.open_file(str(shard)).read_all()
        info = _core.store_shard_info(str(shard))
        print(
            f"{args.samples} samples, shard {len(data) / 1e6:.1f} MB; compressed size as % of raw "
            f"(lower is better), and level-3 compress/decompress speed:"
        )
        print(
            f"  {'column':16s} {'raw MB':>8s} {'B/sample':>9s} {'zstd-1':>7s} {'zstd-3':>7s} {'zstd-9':>7s} "
            f"{'c MB/s':>7s} {'d MB/s':>7s}"
        )
        total = {1: 0, 3: 0, 9: 0}
        for name in table.column_names:
            column = table.column(name).combine_chunks()
            raw = b"".join(bytes(buf) for buf in column.buffers() if buf is not None)
            row = []
            for level in (1, 3, 9):
                c = zstandard.ZstdCompressor(level=level).compress(raw)
                row.append(len(c) / max(1, len(raw)))
                total[level] += len(c)
            c3 = zstandard.ZstdCompressor(level=3)
            t0 = time.perf_counter()
            packed = c3.compress(raw)
            ct = time.perf_counter() - t0
            t0 = time.perf_counter()
            zstandard.ZstdDecompressor().decompress(packed)
            dt = time.perf_counter() - t0
            print(
                f"  {name:16s} {len(raw) / 1e6:8.2f} {len(raw) / args.samples:9.0f} "
                + " ".join(f"{r * 100:6.1f}%" for r in row)
                + f" {len(raw) / 1e6 / max(ct, 1e-9):7.0f} {len(raw) / 1e6 / max(dt, 1e-9):7.0f}"
            )
        whole = {lv: len(zstandard.ZstdCompressor(level=lv).compress(data)) for lv in (1, 3, 9)}
        print(
            f"  {'whole file':16s} {len(data) / 1e6:8.2f} {len(data) / args.samples:9.0f} "
            + " ".join(f"{whole[lv] / len(data) * 100:6.1f}%" for lv in (1, 3, 9))
        )
        assert info["num_samples"] == args.samples


if __name__ == "__main__":
    main()
