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
    torchvision reference with 1 worker (benches/bench_loader_throughput.py's
    runners), interleaved, each repeat in a fresh process.

(3) With `--callgrind BEFORE_BIN AFTER_BIN`: instruction counts per sample and
    stage (noise-free, unlike times on a shared machine) of the same stage
    cases, from `valgrind --tool=callgrind` on the `replay_stages` example of
    each build (`cargo build --release --example replay_stages` in each
    checkout; copy target/release/examples/replay_stages away between builds).

Everything runs single-threaded; the report gives medians and min-max over the
repeats (the machine may be shared: read the spread).

The README's baseline is commit bbf5066 ("bench: callgrind driver example ..."):
main plus the timing hook and this driver, no kernel changed. Build it apart:

    git worktree add --detach ../baseline bbf5066 && (cd ../baseline && scripts/dev-build \
        && cargo build --release --example replay_stages)   # copy the example binary away
    scripts/dev-build && cargo build --release --example replay_stages
    PYTHONPATH=python python benches/bench_per_core.py --before ../baseline/python \
        --out bench-out/per-core [--repeats 5] [--samples 400] [--callgrind BEFORE_BIN AFTER_BIN]
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
        ((box, ops),) = draw_param_aug_entries(w, h, 1, seed=seed * 100003 + k)
        cases.append((jpeg, *box, [(int(o), float(m)) for o, m in ops]))
    return cases


def write_cases(cases: list, path: Path) -> None:
    """The cases file `rust/examples/replay_stages.rs` reads."""
    import struct

    with open(path, "wb") as f:
        for jpeg, top, left, height, width, ops in cases:
            f.write(struct.pack("<I", len(jpeg)) + jpeg + struct.pack("<4iB", top, left, height, width, len(ops)))
            for op, m in ops:
                f.write(struct.pack("<Bd", op, m))


# Symbol whose inclusive count is each stage's (the driver never inlines them).
CALLGRIND_STAGES = {
    "decode": "Decoder::decode_region",
    "resize": "Resampler::crop_resize",
    "ops": "randaugment::apply_op",
    "write": "BatchMemory::put_image",
    "total": "replay_stages::main",
}


def callgrind_counts(binary: str, cases_file: Path, n: int, tmp: Path) -> dict:
    """Instructions per sample per stage, from one callgrind run."""
    import re

    out = tmp / f"callgrind.{os.getpid()}.out"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            binary,
            str(cases_file),
            str(SIZE),
            INTERP,
            "float32",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", str(out)], check=True, capture_output=True, text=True
    ).stdout
    out.unlink()
    counts = {}
    for stage, sym in CALLGRIND_STAGES.items():
        vals = [
            int(m.group(1).replace(",", ""))
            for line in text.splitlines()
            if sym in line
            for m in [re.match(r"\s*([\d,]+)", line)]
            if m
        ]
        counts[stage] = max(vals, default=0) / n
    return counts


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
    ap.add_argument("--before", help="python/ directory of the baseline build (required)")
    ap.add_argument("--after", default=str(HERE.parent / "python"))
    ap.add_argument("--out", type=Path, default=Path("bench-out/per-core"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--samples", type=int, default=400, help="loader samples per set")
    ap.add_argument("--stage-cases", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=3, help="passes over the stage cases per repeat")
    ap.add_argument("--sets", default="512,1k")
    ap.add_argument("--skip-loader", action="store_true")
    ap.add_argument("--skip-stages", action="store_true")
    ap.add_argument(
        "--callgrind",
        nargs=2,
        metavar=("BEFORE_BIN", "AFTER_BIN"),
        help="replay_stages example binaries of the two builds",
    )
    ap.add_argument("--callgrind-cases", type=int, default=40)
    ap.add_argument("--stage-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage_worker:
        print(json.dumps(stage_worker(Path(args.stage_worker[0]), int(args.stage_worker[1]))))
        return
    if not args.before:
        ap.error("--before is required")
    import pickle

    sys.path.insert(0, str(HERE))
    import bench_loader_throughput as lt

    impls = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
    report, lines = {}, []
    for name in args.sets.split(","):
        lo, hi = SETS[name]
        d = args.out / f"set-{name}"
        d.mkdir(parents=True, exist_ok=True)
        cases_path = d / "stage-cases.pkl"
        if not cases_path.exists():
            cases_path.write_bytes(pickle.dumps(stage_cases(lo, hi, args.stage_cases)))
        (d / "loader-data").mkdir(exist_ok=True)
        lt.build_data(d / "loader-data", args.samples, min_side=lo, max_side=hi)

        # (3) instruction counts (noise-free)
        counts = {}
        if args.callgrind:
            cases = pickle.loads(cases_path.read_bytes())[: args.callgrind_cases]
            cfile = d / "callgrind-cases.bin"
            write_cases(cases, cfile)
            counts = {k: callgrind_counts(b, cfile, len(cases), d) for k, b in zip(impls, args.callgrind)}
            lines.append(f"\n### {name} px JPEGs, instructions per sample (callgrind, {len(cases)} cases), millions")
            lines.append("| stage | before | after | after/before |")
            lines.append("|---|---|---|---|")
            for s in STAGES:
                b, a = counts["before"][s], counts["after"][s]
                lines.append(f"| {s} | {b / 1e6:.2f} | {a / 1e6:.2f} | {a / b if b else float('nan'):.2f} |")
            print("\n".join(lines[-(len(STAGES) + 3) :]), flush=True)

        # (1) stage split, before/after interleaved
        stages = {k: {s: [] for s in STAGES} for k in impls}
        if not args.skip_stages:
            for _ in range(args.repeats):
                for k, pp in impls.items():
                    r = run_sub([__file__, "--stage-worker", str(cases_path), str(args.rounds)], pp)
                    for s in STAGES:
                        stages[k][s].append(r[s] * 1e3)
            lines.append(
                f"\n### {name} px JPEGs ({lo}-{hi} px), stage split, ms per sample, median (min-max) of {args.repeats}"
            )
            lines.append("| stage | before | after | after/before |")
            lines.append("|---|---|---|---|")
            for s in STAGES:
                b, a = stages["before"][s], stages["after"][s]
                ratio = statistics.median(a) / statistics.median(b) if statistics.median(b) else float("nan")
                lines.append(f"| {s} | {spread(b)} | {spread(a)} | {ratio:.2f} |")
            print("\n".join(lines[-(len(STAGES) + 3) :]), flush=True)

        # (2) per-core throughput, interleaved
        plan = [("fast", "before"), ("fast", "after"), ("pillow-decode", "after"), ("reference", "after")]
        rates: dict = {}
        if not args.skip_loader:
            for _ in range(args.repeats):
                for kind, impl in plan:
                    r = run_sub(
                        [
                            str(HERE / "bench_loader_throughput.py"),
                            "--out",
                            str(d),
                            "--batch",
                            "32",
                            "--run-one",
                            kind,
                            "1",
                        ],
                        impls[impl],
                    )
                    rates.setdefault(f"{kind}:{impl}", []).append(r["samples_per_s"])
            med = {k: statistics.median(v) for k, v in rates.items()}
            lines.append(
                f"\n### {name} px JPEGs, 1 core, {args.samples} samples, samples/s median (min-max) of {args.repeats}"
            )
            lines.append("| pipeline | samples/s | vs Pillow decode-only | vs reference |")
            lines.append("|---|---|---|---|")
            labels = {
                "fast:before": "FastReinforcedLoader, before",
                "fast:after": "FastReinforcedLoader, after",
                "pillow-decode:after": "Pillow decode only (open + convert RGB)",
                "reference:after": "reference (WebDataset + Pillow + torchvision)",
            }
            for k, label in labels.items():
                lines.append(
                    f"| {label} | {spread(rates[k])} | {med[k] / med['pillow-decode:after']:.2f}x"
                    f" | {med[k] / med['reference:after']:.2f}x |"
                )
            # Per-repeat ratios (each from one interleaved round) show the spread of the ratio itself.
            for base in ("pillow-decode:after", "reference:after"):
                rs = [a / b for a, b in zip(rates["fast:after"], rates[base])]
                lines.append(f"\nafter vs {base.split(':')[0]}, per repeat: {spread(rs)}")
            print("\n".join(lines[-9:]), flush=True)
        report[name] = {"stages_ms": stages, "samples_per_s": rates, "instructions": counts}
    text = "\n".join(lines)
    (args.out / "bench_per_core.md").write_text(text + "\n")
    (args.out / "bench_per_core.json").write_text(json.dumps(report, indent=1))
    print(f"\nwritten: {args.out / 'bench_per_core.md'}")


if __name__ == "__main__":
    main()
