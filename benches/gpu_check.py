"""The GPU check (issue 19), prepared to run once on the device within 7 minutes, and dry-run on
the CPU first by the same code path, so the device run does not fail on a typo.

Here, once (the device image lacks these pure-Python packages; ``.whl/`` is git-ignored; the
versions are the ones the test extra installs here)::

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \\
        open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.7.0 webdataset==1.0.2 braceexpand==0.1.7
    scripts/dev-build      # python/mobileclip_fastload/_core.abi3.so (git-ignored, abi3: runs on 3.12)

On the device (carry ``.whl`` and ``python/mobileclip_fastload/_core.abi3.so``)::

    PYTHONUNBUFFERED=1 python3 benches/gpu_check.py --out $OUT

Dry run on the CPU, in a virtual environment holding only what the device image holds::

    scripts/device-like-venv /tmp/device-like-venv
    /tmp/device-like-venv/bin/python benches/gpu_check.py --dry-run --out /tmp/gpu-check

Steps, each recorded in ``OUT/gpu_check.json`` and ``OUT/gpu_check.md``:

1. environment: the carried wheels installed with ``pip install --target`` (no index, no
   dependencies), they, ``python/`` (the extension) and the repository put on the path of this
   process and of its children; versions of torch, timm, open_clip, numpy; the device.
2. the CUDA tests (``pytest -m cuda``: skipped, not failed, without a GPU), JUnit XML kept.
3. ``benches/bench_train_step.py`` in the order the targets need (S0 channels_last, compiled,
   CUDA graphs, ViT-B-16, the end-to-end loop, S0 plain, S2 and B), the batch per model chosen
   from its memory estimate, with a time budget that ends inside the limit; its per-run JSON
   lines are kept even if it is stopped. Its bulky end-to-end data stays outside OUT.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTENSION = REPO / "python" / "mobileclip_fastload" / "_core.abi3.so"
CUDA_TESTS = ["tests/test_training_fast_step.py"]  # the files holding `-m cuda` tests
# Device run: the order and sizes of issue 19. Dry run: the same steps at tiny sizes on the CPU
# (channels_last and compilation are CUDA-only in the bench: see its docstring).
DEVICE_BENCH = ["--batch", "256", "--precision", "bf16", "--steps", "10", "--warmup", "3", "--e2e-samples", "4096"]
DRY_BENCH = [
    "--device",
    "cpu",
    "--batch",
    "2",
    "--precision",
    "fp32",
    "--steps",
    "1",
    "--warmup",
    "1",
    "--e2e-samples",
    "16",
    "--e2e-window",
    "1",
    "--memory-budget-gib",
    "4",
    "--no-profile",
    "--num-threads",
    "1",  # one thread: no spinning on small machines
    "--runs",
    "S0:plain,S0:cudagraphs,vit,e2e",
]


def install_wheels(wheels: Path, site: Path) -> list[str]:
    found = sorted(glob.glob(str(wheels / "*.whl")))
    if not found:
        raise SystemExit(f"no wheels in {wheels}: build the folder with the command in this script's docstring")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--no-cache-dir",
            "--upgrade",
            "--target",
            str(site),
            *found,
        ],
        check=True,
    )
    return [Path(w).name for w in found]


def environment(site: Path) -> dict:
    """Versions as this process imports them (the children get the same path)."""
    import importlib.metadata

    import torch

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    import mobileclip_fastload
    import open_clip  # noqa: F401  (from the carried wheel: fails here, not in the bench, if missing)
    import timm

    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "timm": timm.__version__,
        "timm_from": timm.__file__,
        "open_clip": version("open_clip_torch"),
        "numpy": version("numpy"),
        "webdataset": version("webdataset"),
        "mobileclip_fastload_from": mobileclip_fastload.__file__,
        "cuda": torch.cuda.is_available(),
        "site": str(site),
    }
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        env.update(
            device=torch.cuda.get_device_name(),
            cuda_version=torch.version.cuda,
            memory_total_gib=total / 2**30,
            memory_free_gib=free / 2**30,
        )
    else:
        env.update(device=f"CPU ({os.cpu_count()} cores)")
    return env


def run_logged(cmd: list[str], log: Path, timeout_s: float, env: dict) -> tuple[int | str, float]:
    """Run ``cmd`` with its output in ``log`` (and echoed); returns (exit code or 'timeout', seconds)."""
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)

        def copy() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                out.flush()
                print(line, end="", flush=True)

        reader = threading.Thread(target=copy, daemon=True)
        reader.start()
        try:
            code: int | str = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = "timeout"
        reader.join(timeout=10)
    return code, time.perf_counter() - t0


def test_summary(junit: Path) -> dict:
    if not junit.exists():
        return {"junit": None}
    cases = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                outcome += f": {(child.get('message') or '')[:200]}"
        cases.append({"test": case.get("name"), "seconds": float(case.get("time", 0)), "outcome": outcome})
    return {"cases": cases}


def bench_lines(log: Path) -> list[dict]:
    """The bench's per-run JSON lines (kept when the bench is stopped before its table)."""
    rows = []
    for line in log.read_text().splitlines() if log.exists() else []:
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                rows.append(json.loads(line))
    return rows


def markdown(report: dict, bench_md: str | None) -> str:
    env = report["environment"]
    lines = [
        f"# GPU check ({'dry run, CPU' if report['dry_run'] else 'device run'})",
        "",
        (
            f"Device: {env.get('device')}; torch {env.get('torch')}; timm {env.get('timm')}; "
            f"open_clip {env.get('open_clip')}; Python {env.get('python')}; wheels: {', '.join(report['wheels'])}."
        ),
        f"Command: `{report['command']}`; total {report['total_s']:.0f} s.",
        "",
        "## CUDA tests",
        "",
        f"exit code {report['tests']['exit']} in {report['tests']['seconds']:.0f} s",
        "",
    ]
    lines += [
        f"- {case['test']}: {case['outcome']} ({case['seconds']:.1f} s)" for case in report["tests"].get("cases", [])
    ]
    bench = report["bench"]
    lines += ["", "## bench_train_step", "", f"exit code {bench['exit']} in {bench['seconds']:.0f} s", ""]
    if bench_md:
        lines.append(bench_md)
    else:
        lines.append("No table (the bench stopped first); its per-run results:")
        lines += [f"- `{json.dumps(r)}`" for r in report["bench"]["rows"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-check-out")))
    ap.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at tiny sizes")
    ap.add_argument("--wheels", type=Path, default=REPO / ".whl")
    ap.add_argument("--site", type=Path, default=None, help="where the wheels are installed (default: a temp dir)")
    ap.add_argument("--time-limit-s", type=float, default=400.0, help="the whole check ends within this")
    ap.add_argument("--tests-timeout-s", type=float, default=150.0)
    ap.add_argument("bench_args", nargs="*", help="after --: more bench_train_step.py options (e.g. --runs ...)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    site = args.site or work / "site"

    if not EXTENSION.exists():
        raise SystemExit(f"{EXTENSION} is missing: build it here (scripts/dev-build) and carry it")
    wheels = install_wheels(args.wheels, site)
    paths = [str(site), str(REPO / "python"), str(REPO)]
    sys.path[:0] = paths
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PYTHONUNBUFFERED="1",
    )
    report: dict = {
        "dry_run": args.dry_run,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "wheels": wheels,
        "environment": environment(site),
    }
    print(json.dumps(report["environment"], indent=1), flush=True)
    if not args.dry_run and not report["environment"]["cuda"]:
        raise SystemExit("no CUDA device: use --dry-run on the CPU")

    junit = args.out / "cuda_tests.xml"
    code, seconds = run_logged(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-m",
            "cuda",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            *CUDA_TESTS,
        ],
        args.out / "cuda_tests.log",
        args.tests_timeout_s,
        env,
    )
    report["tests"] = {"exit": code, "seconds": seconds, **test_summary(junit)}

    bench_out = work / "bench"  # its end-to-end data is large: only the tables are copied to OUT
    left = args.time_limit_s - (time.perf_counter() - t0)
    budget = max(0.0, left - 120.0)  # no run starts after this; the last one gets the rest
    bench_cmd = [
        sys.executable,
        "benches/bench_train_step.py",
        "--out",
        str(bench_out),
        "--budget-s",
        f"{budget:.0f}",
        *(DRY_BENCH if args.dry_run else DEVICE_BENCH),
        *args.bench_args,
    ]
    code, seconds = run_logged(bench_cmd, args.out / "bench.log", max(30.0, left - 15.0), env)
    report["bench"] = {"exit": code, "seconds": seconds, "rows": bench_lines(args.out / "bench.log")}
    bench_md = None
    for name in ("bench_train_step.md", "bench_train_step.json"):
        if (bench_out / name).exists():
            (args.out / name).write_text((bench_out / name).read_text())
    if (bench_out / "bench_train_step.md").exists():
        bench_md = (bench_out / "bench_train_step.md").read_text()
        report["bench"]["result"] = json.loads((bench_out / "bench_train_step.json").read_text())

    report["total_s"] = time.perf_counter() - t0
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    (args.out / "gpu_check.md").write_text(markdown(report, bench_md))
    print(
        f"gpu_check: {report['total_s']:.0f} s; tests exit {report['tests']['exit']}, bench exit "
        f"{report['bench']['exit']}; wrote {args.out}/gpu_check.md and .json",
        flush=True,
    )
    tests_ok = report["tests"]["exit"] == 0
    sys.exit(0 if tests_ok and report["bench"]["exit"] == 0 else 1)


if __name__ == "__main__":
    main()
