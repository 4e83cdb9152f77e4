"""`mobileclip-fastload inspect` and `verify`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mobileclip_fastload.cli import SUBCOMMANDS, main

MARK = b"<<unique image payload>>" * 4


def image_fn(i: int) -> tuple[bytes, int, int]:
    return b"\xff\xd8\xff" + MARK + bytes([i]) * 100, 40, 30


def test_inspect_shows_schema_columns_and_a_sample(make_store, capsys):
    path = make_store(5, image_fn=image_fn)
    assert main(["inspect", str(path), "--sample", "-1"]) == 0
    out = capsys.readouterr().out
    assert "J=3 augmentations" in out and "float16" in out and "5 in 1 shards" in out
    for column in ("image_emb", "text_emb", "aug", "caption_tokens", "sha256"):
        assert f"  {column} " in out
    assert "uid '00000004'" in out and "JPEG, stored 40x30" in out
    assert "per-teacher L2 norms min 0.99" in out  # synthetic embeddings are unit norm per teacher


def test_verify_passes_then_names_the_damaged_shard_and_column(make_store, capsys):
    path = make_store(4, image_fn=image_fn)
    assert main(["verify", str(path)]) == 0
    assert "every checksum matches" in capsys.readouterr().out
    shard = path / "shard-00000.arrow"
    data = bytearray(shard.read_bytes())
    at = data.index(MARK) + 5
    data[at] ^= 0x10
    shard.write_bytes(data)
    assert main(["verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert "shard-00000.arrow: column 'image': checksum mismatch" in err
    assert "1 problem" not in err  # the column and the whole file are both reported


def test_verify_reports_unopenable_and_missing_shards(make_store, capsys):
    path = make_store(6, shard_samples=2)
    shards = sorted(path.glob("shard-*.arrow"))
    assert len(shards) >= 2
    shards[0].write_bytes(b"garbage")
    shards[1].unlink()
    assert main(["verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{shards[0].name}: file is 7 bytes" in err
    assert f"{shards[1].name}: shard file listed in the manifest is missing" in err


def test_unreadable_store_exits_2(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing")]) == 2


@pytest.mark.slow
def test_module_entry_point_and_table():
    assert {c.name for c in SUBCOMMANDS} >= {"inspect", "verify"}
    result = subprocess.run([sys.executable, "-m", "mobileclip_fastload", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "inspect" in result.stdout and "verify" in result.stdout
