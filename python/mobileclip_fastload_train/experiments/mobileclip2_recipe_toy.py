"""A toy run of Apple's MobileCLIP2 recipe (``--recipe mobileclip2``) on a CPU.

A small DR store of real photographs (``mobileclip_fastload.testing.synthetic_store``,
K = 2 teachers as DFNDR's two DFN teachers), a tiny model with every block type of
MobileCLIP-S1/S2 (``tiny-S1``), a few steps through ``mobileclip_fastload_train.train``'s command line:
the recipe's values are printed at the start and used (per-teacher scales 70/60,
lambda 1, AdamW beta2 0.95, wd 0.2, lr 1e-3, warmup, clip 1.0, bf16), and any flag
given overrides its value. It shows the preset runs end to end; its losses measure nothing.

    PYTHONPATH=python python -m mobileclip_fastload_train.experiments.mobileclip2_recipe_toy --out runs/mc2-toy
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import torch
from mobileclip_fastload.testing.synthetic_store import make_store

from mobileclip_fastload_train.train import main as train_main


def run(out: str | Path, steps: int = 3, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Train ``steps`` steps with the recipe; returns the printed recipe line, the run's
    configuration (from its checkpoint) and its metrics; writes them to ``out/summary.json``."""
    out = Path(out)
    store = make_store(out / "store", n=16, J=2, S=2, K=2, D=8, seed=0)
    argv = [
        "--store",
        store,
        "--model",
        "tiny-S1",
        "--recipe",
        "mobileclip2",
        "--batch-size",
        "8",
        "--steps",
        str(steps),
        "--warmup",
        "1",
        "--output",
        str(out / "run"),
        "--log-every",
        "1",
        "--no-progress",
        "--device",
        "cpu",
        "--num-threads",
        "1",
        *extra,
    ]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        train_main(argv)
    state = torch.load(out / "run" / "checkpoints" / "latest.pt", weights_only=True)
    metrics = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    summary = {"argv": argv, "printed": printed.getvalue().strip(), "config": state["config"], "metrics": metrics}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=list))
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    summary = run(args.out, args.steps)
    print(summary["printed"])
    for record in summary["metrics"]:
        print({k: record[k] for k in ("step", "lr", "loss", "kd_loss", "grad_norm")})


if __name__ == "__main__":
    main()
