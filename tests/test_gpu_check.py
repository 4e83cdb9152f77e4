"""The prepared GPU check (benches/gpu_check.py) dry-run end to end on the CPU, in a virtual
environment shaped like the device image (scripts/device-like-venv: torch, timm, ... but no
open_clip, webdataset, braceexpand, ftfy, wcwidth or mobileclip_fastload), with the carried
wheels folder `.whl/` built by the command in gpu_check.py's docstring. Minutes: slow."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / ".whl"


@pytest.mark.heavy
def test_gpu_check_dry_run_in_a_device_like_venv(tmp_path):
    if not sorted(WHEELS.glob("*.whl")):
        pytest.skip(f"no carried wheels in {WHEELS}: build them with the command in benches/gpu_check.py")
    venv, out = tmp_path / "venv", tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([str(REPO / "scripts" / "device-like-venv"), str(venv)], check=True, env=env)
    python = str(venv / "bin" / "python")
    absent = subprocess.run([python, "-c", "import open_clip"], env=env, capture_output=True)
    assert absent.returncode != 0  # as on the device: only the carried wheel provides it

    # A generous limit: every step must run here (on a loaded 2-core machine the CPU step of
    # full-size S0 takes minutes; measured 30 min for the whole dry run under load).
    run = subprocess.run(
        [python, str(REPO / "benches" / "gpu_check.py"), "--dry-run", "--out", str(out), "--time-limit-s", "3300"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = json.loads((out / "gpu_check.json").read_text())
    environment = report["environment"]
    assert environment["open_clip"] and environment["timm"] and environment["webdataset"]
    assert environment["mobileclip_fastload_from"].startswith(str(REPO / "python"))
    assert str(venv) in environment["timm_from"] or "device-packages" in environment["timm_from"]
    cases = report["tests"]["cases"]
    assert cases and all(c["outcome"].startswith("skipped") and "CUDA" in c["outcome"] for c in cases)
    result = report["bench"]["result"]
    assert [(r["model"], r["variant"]) for r in result["steps"]][:1] == [("S0", "plain")]
    assert any(r["model"].startswith("open_clip") for r in result["steps"])
    assert [r["feed"] for r in result["end_to_end"]] == ["in-memory", "FastReinforcedLoader", "WebDataset+DataLoader"]
    assert result["memory"]["S0"]["batch"] == 2
    assert any("cudagraphs (needs CUDA)" in s for s in result["skipped"])
    markdown = (out / "gpu_check.md").read_text()
    assert "| S0 | plain | 2 |" in markdown and "estimated step GiB" in markdown
