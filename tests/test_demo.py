"""The README's first command ends in `python3 -m mobileclip_fastload demo`: run
that main job end to end (smaller) and check it reports exact pixels."""

from __future__ import annotations

import subprocess
import sys

from mobileclip_fastload.cli import main


def test_demo_runs_end_to_end_and_is_pixel_exact(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path), "--samples", "12", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "converted 12/12 samples" in out
    assert "all checksums match" in out
    assert "max |diff| = 0" in out
    assert (tmp_path / "store" / "manifest.json").exists()


def test_demo_needs_no_extra(tmp_path):
    """`pip install mobileclip-fastload` alone runs the demo: it imports nothing from the
    test, reinforce or train extras (scripts/check-fresh-install proves it in a fresh venv)."""
    extras_only = ("skimage", "open_clip", "timm", "transformers", "matplotlib", "webdataset", "pytest", "hypothesis")
    code = (f"import sys; sys.modules.update(dict.fromkeys({extras_only!r}))\n"  # None: importing it raises
            "from mobileclip_fastload.cli import main\n"
            f"raise SystemExit(main(['demo', '--workdir', {str(tmp_path)!r}, '--samples', '8', '--threads', '1']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "max |diff| = 0" in run.stdout
