"""Loader speed of two builds of this package, side by side on one store: did a change to the loader's
hot path cost anything? Each tree's ``python/`` (with its built extension) runs in its own subprocess,
alternating A, B, A, B, ... so that machine noise falls on both; the report is the median CPU seconds per
thousand samples of each and the per-round ratio B / A.

    python benches/bench_loader_ab.py --tree /path/to/old/checkout --tree . --rounds 5

The store is written once, by tree A's ``make_store`` (keep A the older one: both trees read its store).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
from mobileclip_fastload import FastReinforcedLoader
store, (batch, threads, epochs, size) = sys.argv[1], map(int, sys.argv[2:6])
loader = FastReinforcedLoader(store, batch, image_size=size, num_threads=threads, seed=0, image_dtype="uint8")
n = 0
c0, t0 = time.process_time(), time.perf_counter()
for epoch in range(epochs):
    loader.set_epoch(epoch)
    for b in loader:
        n += len(b)
print(json.dumps({"samples": n, "cpu": time.process_time() - c0, "wall": time.perf_counter() - t0}))
"""

WRITER = r"""
import sys
from mobileclip_fastload.testing.synthetic_store import make_store
make_store(sys.argv[1], n=int(sys.argv[2]), J=4, S=4, K=2, D=64, seed=1)
"""


def run(tree: str, code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.abspath(tree), "python")}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: rc {done.returncode}\n{done.stderr[-3000:]}")
    return done.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", action="append", required=True, help="a checkout with its extension built (twice: A, B)")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="loader threads (1: CPU time per sample is the clearest)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    if len(args.tree) != 2:
        raise SystemExit("give --tree twice: A (the baseline) then B")
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        run(args.tree[0], WRITER, store, str(args.samples))
        per_tree: list[list[float]] = [[], []]
        for _ in range(args.rounds):
            for i, tree in enumerate(args.tree):
                child = [store, str(args.batch_size), str(args.threads), str(args.epochs), str(args.image_size)]
                r = json.loads(run(tree, CHILD, *child))
                per_tree[i].append(1000 * r["cpu"] / r["samples"])
    ratios = [b / a for a, b in zip(*per_tree)]
    print(
        json.dumps(
            {
                "trees": args.tree,
                "cpu_s_per_1000_samples_median": [statistics.median(v) for v in per_tree],
                "ratio_b_over_a_per_round": [round(x, 4) for x in ratios],
                "ratio_b_over_a_median": statistics.median(ratios),
                "settings": vars(args),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
