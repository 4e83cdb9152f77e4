"""Draw a run's curves from its ``metrics.jsonl`` into one PNG.

    mobileclip-fastload plot runs/s0            # writes runs/s0/curves.png
    python -m mobileclip_fastload_train.plot runs/s0 --out curves.png

Panels: the loss terms, learning rate, logit scale, throughput, data wait, and the evaluations
(every ``eval/...`` number, in %), each against the optimiser step.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: (panel title, record fields, y-axis scale)
PANELS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("loss", ("loss", "clip_loss", "kd_loss"), "linear"),
    ("learning rate", ("lr",), "linear"),
    ("logit scale", ("logit_scale",), "linear"),
    ("throughput (samples/s)", ("samples_per_s",), "linear"),
    ("data wait (s per step)", ("data_s",), "linear"),
)
EVAL_PREFIX = "eval/"


def read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not a JSON record ({e})") from None
    return records


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return [p[0] for p in points], [p[1] for p in points]


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the PNG (default ``<run_dir>/curves.png``) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mobileclip_fastload.store.atomic import publishing

    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl" if run_dir.is_dir() else run_dir
    if not metrics.is_file():
        raise FileNotFoundError(f"{metrics}: no metrics.jsonl (is {run_dir} a run directory?)")
    records = read_records(metrics)
    if not records:
        raise ValueError(f"{metrics}: no records yet")
    eval_keys = sorted({k for r in records for k in r if k.startswith(EVAL_PREFIX) and k != "eval/seconds"})
    panels = [p for p in PANELS if any(_series(records, k)[0] for k in p[1])]
    n = len(panels) + bool(eval_keys)
    cols = 3 if n > 4 else 2
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (title, keys, scale) in zip(axes.flat, panels):
        for key in keys:
            steps, values = _series(records, key)
            if steps:
                ax.plot(steps, values, label=key, lw=1.2)
        ax.set_title(title)
        ax.set_yscale(scale)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    if eval_keys:
        ax = axes.flat[len(panels)]
        for key in eval_keys:
            steps, values = _series(records, key)
            ax.plot(steps, [100 * v for v in values], marker="o", ms=3, lw=1.2, label=key[len(EVAL_PREFIX) :])
        ax.set_title("evaluation (%)")
        ax.legend(fontsize=6, ncol=2)
    for ax in axes.flat[:n]:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_yscale() == "linear":
            ax.ticklabel_format(axis="y", useOffset=False)  # read values, not offsets from them
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    out = Path(out) if out else (run_dir if run_dir.is_dir() else run_dir.parent) / "curves.png"
    with publishing(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="run directory (holding metrics.jsonl) or the metrics.jsonl file")
    p.add_argument("--out", default=None, help="PNG path (default: <run_dir>/curves.png)")
    args = p.parse_args(argv)
    print(plot_run(args.run_dir, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
