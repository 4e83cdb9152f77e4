"""Open cost against store size: schema 1 (every shard entry in manifest.json) vs schema 2 (a small
manifest.json plus shards.idx, whose head is read at open and whose entries are read per shard).

For each size (1k..400k shards, 1e6..1.28e9 samples) one real shard of R tiny rows (J=S=K=D=1) is written
and hard-linked N times (`shard-00000.arrow` ...), so every order can really read a batch; the manifest
or index states the real counts and sizes. Each measurement runs in a fresh child process:
- open: wall time of `Store(location)`, the RSS it adds (held) and the growth of peak RSS (after torch is
  imported, as in a training script; "peak +0" means below the import's own peak);
- first batch (local only): `FastReinforcedLoader(path, order=..., rank=0, world_size=8)`, construction
  plus the first `next()`, and peak-RSS growth. The epoch plan comes from the sampler of this checkout
  (the Feistel planner is another branch): `global` on main's sampler builds the whole permutation, so it
  is not run above --max-global-samples (issue 22 measured ~100 s and 12-13 GB at 1.28e9).
Remote: manifest.json (and shards.idx) uploaded to moto's S3 server on 127.0.0.1; open only.
Schema-1 rows above the 64 MiB manifest limit run with MOBILECLIP_FASTLOAD_MAX_MANIFEST_BYTES raised
(without it they are refused at open, which is the point of the limit).

Run: PYTHONPATH=python python benches/bench_store_open.py [--sizes 1000:1000000,400000:1280000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [(1_000, 1_000_000), (10_000, 10_000_000), (100_000, 128_000_000), (400_000, 1_280_000_000)]
ORDERS = ("shard_block", "global")
TINY = {"J": 1, "S": 1, "K": 1, "D": 1}
CHILD = r"""
import json, os, resource, sys, time
location, what, order, opts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
from mobileclip_fastload import FastReinforcedLoader, Store
import torch  # imported before the clock starts, as a training script has it
kw = {"cache_dir": opts.pop("cache_dir"), "storage_options": opts} if opts else {}
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
before, peak_before = rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if what == "open":
    store = Store(location, **kw)
    assert len(store) > 0
else:
    loader = FastReinforcedLoader(location, batch_size=64, image_size=16, num_threads=2, order=order, rank=0,
                                  world_size=8, image_dtype="uint8", **kw)
    next(iter(loader))
seconds = time.perf_counter() - t
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
print(json.dumps({"s": seconds, "mb": rss_mb() - before, "peak": peak}))
"""


def child(
    location: str,
    what: str,
    order: str = "",
    options: dict | None = None,
    env: dict | None = None,
    timeout: float = 300,
) -> str:
    try:
        done = subprocess.run(
            check=False,
            args=[sys.executable, "-c", CHILD, location, what, order, json.dumps(options or {})],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s"
    if done.returncode != 0:
        return "error: " + done.stderr.strip().splitlines()[-1][:80]
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return f"{r['s']:.3f} s / +{r['mb']:.0f} MB (peak +{r['peak']:.0f})"


def make_store(root: Path, shards: int, samples: int, schema_version: int, task_names: bool = False) -> Path:
    """`shards` hard links of one real shard of samples/shards rows, and the manifest (schema 1 or 2); with
    `task_names`, named as convert names them (`<task>-<part>.arrow`, stored in shards.idx's names section)."""
    import numpy as np
    from mobileclip_fastload.store import (
        Sample,
        ShardInfo,
        aug_records,
        write_manifest,
        write_shard,
    )

    rows = samples // shards
    path = root / f"v{schema_version}-{shards}"
    path.mkdir(parents=True)
    base = root / f"base-{rows}.arrow"
    if not base.exists():
        aug, _ = aug_records([None], width=4, height=4)
        one = np.ones((1, 1), np.float32)
        import io

        from PIL import Image

        png = io.BytesIO()
        Image.new("RGB", (4, 4), (10, 200, 30)).save(png, format="PNG")
        sample = [
            Sample(
                uid=f"{i:010d}",
                image=png.getvalue(),
                width=4,
                height=4,
                orig_width=4,
                orig_height=4,
                caption="",
                caption_tokens=np.array([49406, 49407], np.uint16),
                syn_captions=["s"],
                syn_tokens=[np.array([49406, 49407], np.uint16)],
                aug=aug,
                image_emb=one,
                text_emb=np.ones((2, 1), np.float32),
            )
            for i in range(rows)
        ]
        write_shard(base, sample, dims=TINY)
    from mobileclip_fastload import _core

    facts = _core.store_shard_info(str(base))
    infos = []
    for n in range(shards):
        name = f"{n:08d}-000.arrow" if task_names else f"shard-{n:05d}.arrow"
        # ext4 allows 65,000 links to one file: one copy of the base shard per 60,000 links.
        source = base if n < 60_000 else base.with_suffix(f".{n // 60_000}")
        if not source.exists():
            source.write_bytes(base.read_bytes())
        os.link(source, path / name)
        infos.append(ShardInfo(name, facts["num_samples"], facts["file_bytes"], facts["file_xxh3"], facts["columns"]))
    write_manifest(path, infos, TINY, "float16", schema_version=schema_version)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(f"{a}:{b}" for a, b in SIZES))
    ap.add_argument("--max-global-samples", type=int, default=20_000_000)
    ap.add_argument("--no-remote", action="store_true")
    ap.add_argument("--schemas", default="1,2", help="schema versions to write, e.g. 2")
    ap.add_argument("--task-names", action="store_true", help="name shards as convert does (00012345-000.arrow)")
    args = ap.parse_args()
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",")]
    big_limit = {"MOBILECLIP_FASTLOAD_MAX_MANIFEST_BYTES": str(1 << 30)}
    remote = None
    if not args.no_remote:
        import boto3
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="bench")
        remote = (s3, endpoint)
    header = [
        "shards",
        "samples",
        "schema",
        "manifest.json (+ shards.idx)",
        "open (local)",
        "open (S3)",
        *(f"first batch, {o}" for o in ORDERS),
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        for shards, samples in sizes:
            for version in (int(v) for v in args.schemas.split(",")):
                path = make_store(root, shards, samples, version, args.task_names)
                env = big_limit if version == 1 else None
                manifest_bytes = (path / "manifest.json").stat().st_size
                index = path / "shards.idx"
                sizes_text = f"{manifest_bytes / 1e6:.3g} MB" + (
                    f" + {index.stat().st_size / 1e6:.3g} MB idx" if index.exists() else ""
                )
                schema = f"{version} (task names)" if args.task_names else str(version)
                cells = [f"{shards:,}", f"{samples:.3g}", schema, sizes_text, child(str(path), "open", env=env)]
                if remote:
                    s3, endpoint = remote
                    prefix = f"v{version}-{shards}"
                    for name in ("manifest.json", "shards.idx"):
                        if (path / name).exists():
                            s3.upload_file(str(path / name), "bench", f"{prefix}/{name}")
                    opts = {
                        "aws_endpoint": endpoint,
                        "allow_http": "true",
                        "aws_access_key_id": "testing",
                        "aws_secret_access_key": "testing",
                        "aws_region": "us-east-1",
                        "cache_dir": str(root / "cache"),
                    }
                    cells.append(child(f"s3://bench/{prefix}", "open", options=opts, env=env))
                else:
                    cells.append("-")
                for order in ORDERS:
                    if order == "global" and samples > args.max_global_samples:
                        cells.append("not run (main's sampler)")
                    else:
                        cells.append(child(str(path), "batch", order, env=env))
                print("| " + " | ".join(cells) + " |", flush=True)
                for f in path.iterdir():
                    f.unlink()
                path.rmdir()


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"(total {time.time() - t0:.0f} s)", file=sys.stderr)
