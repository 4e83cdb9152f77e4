"""``python -m mobileclip_fastload convert``: the same conversion from the command line."""

import json
import os
import subprocess
import sys

import pytest
from mobileclip_fastload.convert.cli import main
from mobileclip_fastload.testing.datacompdr import assert_store_matches, make_dataset


@pytest.mark.slow
def test_cli_converts_reports_and_exits_2_on_an_unreadable_shard(tmp_path):
    ds = make_dataset(tmp_path / "src", num_shards=2, samples_per_shard=3, layout="joined", seed=41)
    (tmp_path / "src" / "dr" / "00000002.tar").write_bytes(b"not a tar" * 200)
    out = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    pattern = str(tmp_path / "src" / "dr" / "{00000000..00000002}.tar")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mobileclip_fastload",
            "convert",
            pattern,
            "-o",
            str(out),
            "-j",
            "2",
            "--embedding-dtype",
            "bfloat16",
            "--target-shard-size",
            "1G",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "converted 6/6 samples" in proc.stdout and "UNREADABLE" in proc.stdout
    assert proc.stderr == ""  # no progress bar when not a terminal
    report = json.loads((out / "convert_report.json").read_text())
    assert report["samples_written"] == 6 and report["workers"] == 2
    assert report["shards"]["unreadable"][0]["input"].endswith("00000002.tar")
    assert_store_matches(str(out), ds.samples, emb_format="npz", embedding_dtype="bfloat16")
    verify = subprocess.run(
        [sys.executable, "-m", "mobileclip_fastload", "verify", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stderr


def test_cli_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "x.tar"), "-o", str(tmp_path / "out"), "--dims", "1,2,3"])
    assert e.value.code == 2
    assert main([str(tmp_path / "nothing-{a,b}.tar"), "-o", str(tmp_path / "out"), "--layout", "separate"]) == 2
    assert "image_shards" in capsys.readouterr().err
