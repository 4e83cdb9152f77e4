"""The README's first command ends in `python3 -m mobileclip_fastload demo`: run
that main job end to end (smaller) and check it reports exact pixels."""

from __future__ import annotations

from mobileclip_fastload.cli import main


def test_demo_runs_end_to_end_and_is_pixel_exact(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path), "--samples", "12", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "converted 12/12 samples" in out
    assert "all checksums match" in out
    assert "max |diff| = 0" in out
    assert (tmp_path / "store" / "manifest.json").exists()
