"""Random access to teacher embeddings: the DR store vs DataCompDR-style tars.

Per access (sample i, augmentation j), like one training step needs: image
embedding row (i, j), the real-caption text row and one synthetic-caption row,
and augmentation entry j, each as float32 / parsed params.

- store: `Store.image_emb(i, j)`, `Store.text_emb(i)[[0, s]]`, `Store.aug(i)[j]`
  (zero-copy views into the mapped shard, converted to float32 rows).
- tar+npz: the usual way today: index the tar members once, then per access read
  the sample's `npz` member, `np.load` it, take the rows, and `json.loads` its
  `paug.json` member.

Both data sets are synthetic with DataCompDR-12M shapes (J=30, S=5, K=2, D=768;
npz float32 as shipped, store float16). "warm" runs with both in the page
cache; "cold" first drops our own files from the page cache
(posix_fadvise DONTNEED) and reports the bytes the kernel then actually read
from storage (/proc/self/io read_bytes), which includes readahead.

Run: PYTHONPATH=python python benches/bench_store_random_access.py [--samples 3000]
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from mobileclip_fastload import Store
from mobileclip_fastload.store import Sample, StoreWriter, aug_records
from mobileclip_fastload.testing.datacompdr import write_tar

J, S, K, D = 30, 5, 2, 768
SAMPLES_PER_TAR = 500
IMAGE_BYTES = 8 << 10  # stand-in for an encoded image kept in the store (DR tars hold none)


def param_aug(rng: np.random.Generator) -> list:
    return [
        [
            [
                int(rng.integers(0, 200)),
                int(rng.integers(0, 200)),
                int(rng.integers(50, 300)),
                int(rng.integers(50, 300)),
            ],
            [[int(rng.integers(0, 14)), float(rng.normal())], [int(rng.integers(0, 14)), float(rng.normal())]],
        ]
        for _ in range(J)
    ]


def build(root: Path, n: int) -> tuple[Path, list[Path]]:
    rng = np.random.default_rng(0)
    store_dir, tars = root / "store", []

    def samples(writer: StoreWriter, first: int, stop: int):
        """(key, members) of samples first..stop-1 for write_tar, each also added to the store."""
        for i in range(first, stop):
            key = f"{i:09d}"
            image_emb = rng.standard_normal((J, K * D), dtype=np.float32)
            text_emb = rng.standard_normal((1 + S, K * D), dtype=np.float32)
            params = param_aug(rng)
            syn = [f"synthetic caption {s} of sample {i}" for s in range(S)]
            npz = io.BytesIO()
            np.savez(npz, image_emb=image_emb, text_emb=text_emb)
            yield (
                key,
                [
                    ("url.txt", f"https://example.com/{key}.jpg".encode()),
                    ("syn.json", json.dumps({"syn_text": syn}).encode()),
                    ("paug.json", json.dumps({"param_aug": params}).encode()),
                    ("npz", npz.getvalue()),
                    ("json", json.dumps({"uid": key, "sha256": "0" * 64}).encode()),
                ],
            )
            aug, _ = aug_records(params, width=320, height=320)
            writer.add(
                Sample(
                    uid=key,
                    image=rng.integers(0, 256, IMAGE_BYTES, dtype=np.uint8).tobytes(),
                    width=320,
                    height=320,
                    orig_width=320,
                    orig_height=320,
                    caption=f"caption {i}",
                    caption_tokens=np.array([49406, 49407], np.uint16),
                    syn_captions=syn,
                    syn_tokens=[np.array([49406, 49407], np.uint16)] * S,
                    aug=aug,
                    image_emb=image_emb,
                    text_emb=text_emb,
                )
            )

    with StoreWriter(store_dir, J=J, S=S, K=K, D=D, embedding_dtype="float16") as writer:
        for first in range(0, n, SAMPLES_PER_TAR):
            tars.append(root / f"{first // SAMPLES_PER_TAR:08d}.tar")
            write_tar(tars[-1], samples(writer, first, min(n, first + SAMPLES_PER_TAR)))
    return store_dir, tars


class TarNpzReader:
    """Random access the way it is done today with DataCompDR tars."""

    def __init__(self, tars: list[Path]):
        self.members: dict[str, dict[str, tuple[tarfile.TarFile, tarfile.TarInfo]]] = {}
        self.keys: list[str] = []
        self.files = [tarfile.open(p, "r:") for p in tars]  # noqa: SIM115 -- closed by close()
        for tf in self.files:
            for info in tf.getmembers():
                key, ext = info.name.split(".", 1)
                if key not in self.members:
                    self.members[key] = {}
                    self.keys.append(key)
                self.members[key][ext] = (tf, info)
        self.bytes_read = 0

    def read(self, i: int, j: int, s: int):
        member = self.members[self.keys[i]]
        tf, info = member["npz"]
        data = tf.extractfile(info).read()
        tf2, info2 = member["paug.json"]
        paug = tf2.extractfile(info2).read()
        self.bytes_read += len(data) + len(paug)
        with np.load(io.BytesIO(data)) as npz:
            image_row = npz["image_emb"][j]
            text_rows = npz["text_emb"][[0, s]]
        aug = json.loads(paug)["param_aug"][j]
        return image_row, text_rows, aug

    def close(self):
        for tf in self.files:
            tf.close()


def read_store(store: Store, i: int, j: int, s: int):
    image_row = store.image_emb(i, j).astype(np.float32)
    text_rows = store.text_emb(i)[[0, s]].astype(np.float32)
    aug = store.aug(i)[j]
    return image_row, text_rows, aug


def check_same_values(store: Store, tar_reader: TarNpzReader, accesses: np.ndarray) -> None:
    """Both paths return the same rows (float16 rounding aside) and the same boxes."""
    for i, j, s in accesses:
        a, b = read_store(store, int(i), int(j), int(s)), tar_reader.read(int(i), int(j), int(s))
        np.testing.assert_allclose(a[0], b[0], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-3, atol=1e-3)
        assert (a[2]["top"], a[2]["left"], a[2]["height"], a[2]["width"]) == tuple(b[2][0])


def drop_from_page_cache(paths: list[Path]) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def storage_read_bytes() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("read_bytes"))


def run(name: str, fn, accesses: np.ndarray) -> tuple[float, float]:
    io_before = storage_read_bytes()
    t0 = time.perf_counter()
    for i, j, s in accesses:
        fn(int(i), int(j), int(s))
    dt = time.perf_counter() - t0
    return len(accesses) / dt, (storage_read_bytes() - io_before) / len(accesses)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--warm-accesses", type=int, default=20000)
    ap.add_argument("--cold-accesses", type=int, default=1000)
    ap.add_argument("--dir", type=Path, default=None, help="where to build the data (default: a temp dir, removed)")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(dir=args.dir, prefix="bench-store-"))
    try:
        t0 = time.perf_counter()
        store_dir, tars = build(root, args.samples)
        build_s = time.perf_counter() - t0
        store_files = sorted(store_dir.glob("shard-*.arrow"))
        store_bytes = sum(p.stat().st_size for p in store_files)
        tar_bytes = sum(p.stat().st_size for p in tars)
        print(f"data: {args.samples} samples, J={J} S={S} K={K} D={D}; built in {build_s:.1f} s")
        print(
            f"  store: {len(store_files)} shards, {store_bytes / 2**20:.0f}"
            f" MiB (float16 embeddings + {IMAGE_BYTES >> 10} KiB images)"
        )
        print(f"  tars:  {len(tars)} tars, {tar_bytes / 2**20:.0f} MiB (float32 npz, no images)")

        rng = np.random.default_rng(1)

        def accesses(n: int) -> np.ndarray:
            return np.stack(
                [rng.integers(0, args.samples, n), rng.integers(0, J, n), rng.integers(1, S + 1, n)], axis=1
            )

        t0 = time.perf_counter()
        tar_reader = TarNpzReader(tars)
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store = Store(store_dir)
        open_s = time.perf_counter() - t0
        check_same_values(store, tar_reader, accesses(20))
        print(f"  tar member index built in {index_s * 1e3:.0f} ms; store opened in {open_s * 1e3:.0f} ms")

        row_bytes = K * D * 2
        store_touched = 3 * row_bytes + 40
        npz_member = np.mean(
            [
                tar_reader.members[k]["npz"][1].size + tar_reader.members[k]["paug.json"][1].size
                for k in tar_reader.keys[:100]
            ]
        )
        results = []
        warm = accesses(args.warm_accesses)
        results.append(("store", "warm", *run("store", functools.partial(read_store, store), warm)))
        results.append(("tar+npz", "warm", *run("tar", tar_reader.read, warm[: max(1, args.warm_accesses // 10)])))

        cold = accesses(args.cold_accesses)
        del store  # unmap (no view of it is left): the kernel keeps mapped pages cached whatever we advise
        drop_from_page_cache(store_files)
        cold_store = Store(store_dir)  # a fresh mapping, so no page is already mapped
        drop_from_page_cache(store_files)
        results.append(("store", "cold", *run("store", lambda i, j, s: read_store(cold_store, i, j, s), cold)))
        drop_from_page_cache(tars)
        results.append(("tar+npz", "cold", *run("tar", tar_reader.read, cold)))
        tar_reader.close()

        print()
        print(
            f"{'reader':<9} {'cache':<5} {'accesses/s':>11}"
            f" {'bytes requested/access':>23} {'bytes from storage/access':>26}"
        )
        for reader, cache, rate, io_bytes in results:
            requested = store_touched if reader == "store" else npz_member
            storage = f"{io_bytes / 1024:.1f} KiB" if cache == "cold" else "-"
            print(f"{reader:<9} {cache:<5} {rate:>11,.0f} {requested / 1024:>19.1f} KiB {storage:>26}")
        warm_rates = {r: rate for r, c, rate, _ in results if c == "warm"}
        cold_rates = {r: rate for r, c, rate, _ in results if c == "cold"}
        print(
            f"\nstore / tar+npz: {warm_rates['store'] / warm_rates['tar+npz']:.0f}x warm, "
            f"{cold_rates['store'] / cold_rates['tar+npz']:.0f}x cold"
        )
        print("(one access = image row (i, j) + 2 text rows + aug entry j; store rows are float16, npz float32)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
