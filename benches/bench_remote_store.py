"""Remote stores: open cost, time to first batch and throughput from an S3 server.

1. Open: wall time and bytes read (/proc/self/io rchar) of `Store(path)` for
   stores of 1k and 100k samples (real shard files, small dims) and a synthetic
   12M-sample manifest (DataCompDR-12M-like: ~1,700 samples per 256 MiB shard,
   ~7,000 shard entries whose files do not exist: opening must not touch them).
2. Loader: the same store (real photo JPEGs) read from local disk and from
   moto's S3 server on 127.0.0.1 through the shard cache, shard-block order on
   both: time to first batch (cold cache), samples/s of a cold epoch and of
   later ones, bytes downloaded per sample delivered. The cache holds 14 of the
   store's 20 shards, so every epoch downloads again: steady state for a store
   larger than its cache, with prefetch keeping the window warm.

Run: PYTHONPATH=python python benches/bench_remote_store.py [--samples 480]
(needs `moto[server]` and `boto3`, in the test extra).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def small_store(path: Path, n: int, per_shard: int) -> Path:
    """n samples with tiny dims and images: what open costs, not what data costs."""
    from mobileclip_fastload.store import AUG_DTYPE, Sample, StoreWriter

    rng = np.random.default_rng(0)
    aug = np.zeros(2, dtype=AUG_DTYPE)
    aug["height"], aug["width"], aug["n_ops"] = 8, 8, 0
    emb = rng.standard_normal((2, 2 * 4)).astype(np.float32)
    temb = rng.standard_normal((3, 2 * 4)).astype(np.float32)
    with StoreWriter(path, J=2, S=2, K=2, D=4, target_shard_bytes=per_shard * 400) as w:
        for i in range(n):
            w.add(
                Sample(
                    uid=f"s{i}",
                    image=b"",
                    width=8,
                    height=8,
                    orig_width=8,
                    orig_height=8,
                    caption="c",
                    caption_tokens=np.array([49406, 49407], np.uint16),
                    syn_captions=["a", "b"],
                    syn_tokens=[np.array([49406, 49407], np.uint16)] * 2,
                    aug=aug,
                    image_emb=emb,
                    text_emb=temb,
                    sha256=None,
                    flags=0,
                )
            )
    return path


def synthetic_12m_manifest(path: Path, template: Path) -> Path:
    """A schema-1 manifest of 12.8M samples in 7,500 shard entries of 1,700 (files absent)."""
    from mobileclip_fastload import Store

    m = json.loads((template / "manifest.json").read_text())
    entry = Store(template).shard_entry(0)
    shards = [
        {**entry, "file": f"shard-{k:05d}.arrow", "num_samples": 1700, "file_bytes": 256 << 20} for k in range(7500)
    ]
    m = {k: v for k, v in m.items() if k not in ("num_shards", "shard_index")}  # the template is schema 2
    m.update(schema_version=1, shards=shards, num_samples=1700 * len(shards))
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps(m, indent=1))
    return path


def bench_open(tmp: Path) -> None:
    from mobileclip_fastload import Store

    stores = {
        "1k samples": small_store(tmp / "s1k", 1_000, 100),
        "100k samples": small_store(tmp / "s100k", 100_000, 1_000),
    }
    stores["12.8M samples (manifest only)"] = synthetic_12m_manifest(tmp / "s12m", stores["1k samples"])
    print("open (Store(path)), best of 5:")
    for name, path in stores.items():
        times, reads = [], []
        for _ in range(5):
            r0, t0 = rchar(), time.perf_counter()
            st = Store(path)
            times.append(time.perf_counter() - t0)
            reads.append(rchar() - r0)
            assert st.shards_mapped == 0
        size = (path / "manifest.json").stat().st_size
        data = sum(f.stat().st_size for f in path.glob("shard-*.arrow"))
        print(
            f"  {name:30s} {len(st):>10,d} samples {st.num_shards:>6,d} shards  {min(times) * 1e3:7.1f} ms  "
            f"read {min(reads) / 1e6:7.2f} MB (manifest {size / 1e6:.2f} MB, shard files on disk {data / 1e6:.1f} MB)"
        )


def bench_loader(tmp: Path, samples: int, threads: int, args_epochs: int) -> None:
    import boto3
    from mobileclip_fastload import FastReinforcedLoader
    from mobileclip_fastload.testing.synthetic_store import make_store
    from moto.server import ThreadedMotoServer

    local = Path(make_store(tmp / "photos", n=samples, J=4, S=3, K=2, D=256, seed=1, target_shard_bytes=512 << 10))
    shard_bytes = [f.stat().st_size for f in local.glob("shard-*.arrow")]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        creds = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds)
        s3.create_bucket(Bucket="bench")
        for f in local.iterdir():
            s3.upload_file(str(f), "bench", f"photos/{f.name}")
        opts = {"aws_endpoint": endpoint, "allow_http": "true", "aws_region": "us-east-1", **creds}
        common = dict(
            batch_size=32,
            image_size=224,
            num_threads=threads,
            image_dtype="uint8",
            order="shard_block",
            shuffle_window=2,
            seed=0,
        )
        print(
            f"\nloader: {samples} samples, {len(shard_bytes)} shards of ~{np.mean(shard_bytes) / 1e6:.1f} MB, "
            f"{threads} threads, batch 32, 224 px, shard_block window 2"
        )
        loaders = {
            "local disk": lambda: FastReinforcedLoader(local, **common),
            # A cache of 14 of the 20 shards: window 2 + 7 the 6 batches in flight may span + 4 prefetched + 1
            # (docs/REMOTE.md); every epoch downloads again.
            "S3 (moto, 127.0.0.1)": lambda: FastReinforcedLoader(
                "s3://bench/photos",
                **common,
                storage_options=opts,
                cache_dir=tmp / "cache",
                cache_size=14 * max(shard_bytes),
            ),
        }
        made, rates = {}, {name: [] for name in loaders}
        for name, make in loaders.items():
            t0 = time.perf_counter()
            loader = made[name] = make()
            it = iter(loader)
            n = len(next(it))
            first = time.perf_counter() - t0
            for b in it:
                n += len(b)
            print(
                f"  {name:22s} first batch {first:5.2f} s   epoch 0 (cold,"
                f" incl. open) {n / (time.perf_counter() - t0):7.1f} samples/s"
            )
        # Warm epochs, alternating the two so that load from other processes hits both alike.
        for epoch in range(1, 1 + args_epochs):
            for name, loader in made.items():
                loader.set_epoch(epoch)
                t1, n = time.perf_counter(), 0
                for b in loader:
                    n += len(b)
                rates[name].append(n / (time.perf_counter() - t1))
        for name, loader in made.items():
            stats = loader._core.cache_stats()
            delivered = samples * (1 + args_epochs)
            extra = (
                f"   {stats['bytes_downloaded'] / delivered / 1e3:.1f} KB downloaded per sample delivered"
                if stats
                else ""
            )
            print(
                f"  {name:22s} warm epochs: best {max(rates[name]):7.1f}"
                f" samples/s, median {np.median(rates[name]):7.1f}{extra}"
            )
        (local_rate, remote_rate) = (max(r) for r in rates.values())
        print(f"  warm remote / local (best of {args_epochs}): {remote_rate / local_rate:.2f}")
    finally:
        server.stop()


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=480)
    p.add_argument("--num-threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--epochs", type=int, default=4, help="warm epochs per loader")
    p.add_argument("--skip-open", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_open:
            bench_open(Path(tmp))
        bench_loader(Path(tmp), args.samples, args.num_threads, args.epochs)


if __name__ == "__main__":
    main()
