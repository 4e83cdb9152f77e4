"""Per-core cost of the exact image path, before vs after, side by side in one run.

Two parts, each on ~512 px (384-512) and on 1,000+ px (1000-1400) photo JPEGs
(q70-95, random subsampling; real photographs from skimage, the large ones
upscaled), 256 px bilinear output as the loader's default:

(1) Stage split per sample (decode, crop/resize, RandAugment ops, write of a
    normalised float32 batch row), measured inside the Rust core
    (`_core.bench_stage_times`) on DataCompDR-distributed entries (torchvision's
    RandomResizedCrop + RandAugment(2, 9) draws), for the "before" and the
    "after" extension (`--before DIR`: a `python/` directory holding the
    baseline build), interleaved, each repeat in a fresh process.
(2) Throughput per core: FastReinforcedLoader with 1 thread (before / after)
    vs Pillow decode-only of the same JPEGs and vs the WebDataset + Pillow +
    torchvision reference with 1 worker (benches/loader_throughput.py's
    runners), interleaved, each repeat in a fresh process.

Everything runs single-threaded; the report gives medians and min-max over the
repeats (the machine may be shared: read the spread).

    PYTHONPATH=python python benches/bench_per_core.py --before /path/to/baseline/python \
        --out bench-out/per-core [--repeats 5] [--samples 400]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETS = {"512": (384, 512), "1k": (1000, 1400)}
SIZE, INTERP = 256, "bilinear"
STAGES = ("decode", "resize", "ops", "write", "total")


# ----------------------------------------------------------------------------- data
def stage_cases(min_side: int, max_side: int, n: int, seed: int = 0) -> list:
    """(jpeg, top, left, height, width, ops) with torchvision-drawn entries."""
    import numpy as np

    from mobileclip_fastload.testing.datacompdr import draw_param_aug_entries
    from mobileclip_fastload.testing.synthetic_store import photo_jpeg

    rng = np.random.default_rng(seed)
    cases = []
    for k in range(n):
        jpeg, w, h = photo_jpeg(rng, min_side=min_side, max_side=max_side)
        (box, ops), = draw_param_aug_entries(w, h, 1, seed=seed * 100003 + k)
        cases.append((jpeg, *box, [(int(o), float(m)) for o, m in ops]))
    return cases


def stage_worker(cases_path: Path, rounds: int) -> dict:
    import pickle

    from mobileclip_fastload import _core

    cases = pickle.loads(cases_path.read_bytes())
    _core.bench_stage_times(cases[:8], SIZE, INTERP, "float32", 1)  # warm-up
    return _core.bench_stage_times(cases, SIZE, INTERP, "float32", rounds)


# ----------------------------------------------------------------------------- runs
def run_sub(args: list[str], pythonpath: str) -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="python/ directory of the baseline build")
    ap.add_argument("--after", default=str(HERE.parent / "python"))
    ap.add_argument("--out", type=Path, default=Path("bench-out/per-core"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--samples", type=int, default=400, help="loader samples per set")
    ap.add_argument("--stage-cases", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=3, help="passes over the stage cases per repeat")
    ap.add_argument("--sets", default="512,1k")
    ap.add_argument("--skip-loader", action="store_true")
    ap.add_argument("--stage-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage_worker:
        print(json.dumps(stage_worker(Path(args.stage_worker[0]), int(args.stage_worker[1]))))
        return
    import pickle

    sys.path.insert(0, str(HERE))
    import loader_throughput as lt

    impls = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
    report, lines = {}, []
    for name in args.sets.split(","):
        lo, hi = SETS[name]
        d = args.out / f"set-{name}"
        d.mkdir(parents=True, exist_ok=True)
        cases_path = d / "stage-cases.pkl"
        if not cases_path.exists():
            cases_path.write_bytes(pickle.dumps(stage_cases(lo, hi, args.stage_cases)))
        lt.build_data(d / "loader-data", args.samples, min_side=lo, max_side=hi)

        # (1) stage split, before/after interleaved
        stages = {k: {s: [] for s in STAGES} for k in impls}
        for _ in range(args.repeats):
            for k, pp in impls.items():
                r = run_sub([__file__, "--stage-worker", str(cases_path), str(args.rounds)], pp)
                for s in STAGES:
                    stages[k][s].append(r[s] * 1e3)
        lines.append(f"\n### {name} px JPEGs ({lo}-{hi} px), stage split, ms per sample, median (min-max) of {args.repeats}")
        lines.append("| stage | before | after | after/before |")
        lines.append("|---|---|---|---|")
        for s in STAGES:
            b, a = stages["before"][s], stages["after"][s]
            ratio = statistics.median(a) / statistics.median(b) if statistics.median(b) else float("nan")
            lines.append(f"| {s} | {spread(b)} | {spread(a)} | {ratio:.2f} |")
        print("\n".join(lines[-(len(STAGES) + 3):]), flush=True)

        # (2) per-core throughput, interleaved
        plan = [("fast", "before"), ("fast", "after"), ("pillow-decode", "after"), ("reference", "after")]
        rates: dict = {}
        if not args.skip_loader:
            for _ in range(args.repeats):
                for kind, impl in plan:
                    r = run_sub([str(HERE / "loader_throughput.py"), "--out", str(d), "--batch", "32", "--run-one", kind, "1"],
                                impls[impl])
                    rates.setdefault(f"{kind}:{impl}", []).append(r["samples_per_s"])
            med = {k: statistics.median(v) for k, v in rates.items()}
            lines.append(f"\n### {name} px JPEGs, 1 core, {args.samples} samples, samples/s median (min-max) of {args.repeats}")
            lines.append("| pipeline | samples/s | vs Pillow decode-only | vs reference |")
            lines.append("|---|---|---|---|")
            labels = {"fast:before": "FastReinforcedLoader, before", "fast:after": "FastReinforcedLoader, after",
                      "pillow-decode:after": "Pillow decode only (open + convert RGB)",
                      "reference:after": "reference (WebDataset + Pillow + torchvision)"}
            for k, label in labels.items():
                lines.append(f"| {label} | {spread(rates[k])} | {med[k] / med['pillow-decode:after']:.2f}x"
                             f" | {med[k] / med['reference:after']:.2f}x |")
            # Per-repeat ratios (each from one interleaved round) show the spread of the ratio itself.
            for base in ("pillow-decode:after", "reference:after"):
                rs = [a / b for a, b in zip(rates["fast:after"], rates[base])]
                lines.append(f"\nafter vs {base.split(':')[0]}, per repeat: {spread(rs)}")
            print("\n".join(lines[-9:]), flush=True)
        report[name] = {"stages_ms": stages, "samples_per_s": rates}
    text = "\n".join(lines)
    (args.out / "bench_per_core.md").write_text(text + "\n")
    (args.out / "bench_per_core.json").write_text(json.dumps(report, indent=1))
    print(f"\nwritten: {args.out / 'bench_per_core.md'}")


if __name__ == "__main__":
    main()
