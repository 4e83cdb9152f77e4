"""The README's first command ends in `python3 -m mobileclip_fastload demo`: run
that main job end to end (smaller) and check it reports exact pixels. It runs
with the extras' packages made unimportable: `pip install mobileclip-fastload`
alone runs the demo (scripts/check-fresh-install proves it in a fresh venv)."""

from __future__ import annotations

import subprocess
import sys

import pytest

EXTRAS_ONLY = ("skimage", "open_clip", "timm", "transformers", "matplotlib", "webdataset", "pytest", "hypothesis")


@pytest.mark.slow
def test_demo_runs_end_to_end_without_the_extras_and_is_pixel_exact(tmp_path):
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({EXTRAS_ONLY!r}))\n"  # None: importing it raises
        "from mobileclip_fastload.cli import main\n"
        f"raise SystemExit(main(['demo', '--workdir', {str(tmp_path)!r}, '--samples', '12', '-j', '1',"
        " '--num-threads', '1']))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "converted 12/12 samples" in run.stdout
    assert "all checksums match" in run.stdout
    assert "max |diff| = 0" in run.stdout
    assert (tmp_path / "store" / "manifest.json").exists()
