"""Epoch planning at DataCompDR-1B scale: the time and memory for a rank to get the
indices of its first batch (and of a batch deep into a resumed epoch), per order, against
store size. The loader runs the same plan (`_core.epoch_indices` is its `EpochPlan`).

Each configuration runs in a fresh process, so its peak RSS (ru_maxrss) is its own; "plan
memory" is that peak minus the same process's peak before planning. The shard_block order
is given the store's shard sizes (N / shards samples each), as the loader is; building that
list in Python happens before the clock starts; passing it to the core is timed.

Run: PYTHONPATH=python python benches/bench_epoch_plan.py [--batch 256]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
from mobileclip_fastload import _core
n, shards, order, rank, world, batch = json.loads(sys.argv[1])
kw = {}
if order == "shard_block":
    kw = {"shard_sizes": [n // shards + (1 if k < n % shards else 0) for k in range(shards)], "window": 4}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
first = _core.epoch_indices(n, seed=1, epoch=0, rank=rank, world_size=world, count=batch, **kw)
t1 = time.perf_counter()
per_rank = -(-n // world)
start = max(0, min(per_rank * 3 // 4, per_rank - batch))
late = _core.epoch_indices(n, seed=1, epoch=0, rank=rank, world_size=world, start=start, count=batch, **kw)
t2 = time.perf_counter()
assert len(first) == len(late) == batch
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"first_ms": 1e3 * (t1 - t0), "resume_ms": 1e3 * (t2 - t1), "plan_mib": (peak - before) / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    rows = []
    for n, shards in ((1_000_000, 1_000), (100_000_000, 31_250), (1_280_000_000, 400_000)):
        for order in ("global", "shard_block"):
            for world in (8, 1024):
                config = json.dumps([n, shards, order, 0, world, args.batch])
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, config], check=True, capture_output=True, text=True
                ).stdout
                r = json.loads(out)
                rows.append((n, shards, order, world, r))
    print(
        "| samples | shards | order | rank 0 of | first batch (ms) | batch at 3/4 of the epoch (ms) "
        "| plan memory (MiB) |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|")
    for n, shards, order, world, r in rows:
        print(
            f"| {n:,} | {shards:,} | {order} | {world} | {r['first_ms']:.2f} | {r['resume_ms']:.2f} "
            f"| {r['plan_mib']:.1f} |"
        )


if __name__ == "__main__":
    main()
