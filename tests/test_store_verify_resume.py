"""`verify` a block of shards at a time with a state file: problems found, progress saved, a rerun resumes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import synthetic_sample
from mobileclip_fastload.store import StoreWriter
from mobileclip_fastload.store.verify_progress import verify

DIMS = {"J": 2, "S": 2, "K": 2, "D": 4}


@pytest.fixture
def store(tmp_path) -> Path:
    first = synthetic_sample(0, **DIMS)
    target = (len(first.image) + first.image_emb.size * 2 + first.text_emb.size * 2) * 2
    with StoreWriter(tmp_path / "s", **DIMS, target_shard_bytes=target, schema_version=2) as w:
        for i in range(13):
            w.add(synthetic_sample(i, **DIMS))
    return tmp_path / "s"


def flip(path: Path, at: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x10
    path.write_bytes(bytes(data))


def test_finds_damage_and_records_every_shard(store, tmp_path):
    flip(store / "shard-00004.arrow")
    state = tmp_path / "state.json"
    problems = verify(store, state=state, block=2, progress=False)
    assert len(problems) >= 1 and all("shard-00004.arrow" in p for p in problems)
    saved = json.loads(state.read_text())
    shards = saved["num_shards"]
    assert shards >= 6
    done = base64.b64decode(saved["done"])
    assert all(done[n // 8] >> (n % 8) & 1 for n in range(shards)) and saved["problems"] == problems


def test_a_rerun_skips_the_shards_already_checked(store, tmp_path):
    state = tmp_path / "state.json"
    assert verify(store, state=state, block=3, progress=False) == []
    saved = json.loads(state.read_text())
    # Pretend the run stopped after shards 0 and 1, having found a problem there.
    saved["done"] = base64.b64encode(bytes([0b11] + [0] * (len(base64.b64decode(saved["done"])) - 1))).decode()
    saved["problems"] = ["recorded earlier"]
    state.write_text(json.dumps(saved))
    flip(store / "shard-00000.arrow")  # already checked: not looked at again
    flip(store / "shard-00003.arrow")  # not yet checked: found
    problems = verify(store, state=state, block=3, progress=False)
    assert problems[0] == "recorded earlier"
    assert any("shard-00003.arrow" in p for p in problems[1:])
    assert not any("shard-00000.arrow" in p for p in problems)


def test_a_state_of_another_store_is_refused(store, tmp_path):
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "format": "mobileclip-fastload/verify-state-1",
                "location": "elsewhere",
                "num_shards": 1,
                "done": "",
                "problems": [],
            }
        )
    )
    with pytest.raises(ValueError, match="another store"):
        verify(store, state=state, progress=False)


@pytest.mark.slow
def test_cli_verify_with_state(store, tmp_path):
    root = Path(__file__).resolve().parents[1]
    run = [sys.executable, "-m", "mobileclip_fastload", "verify", "--state", str(tmp_path / "st.json"), str(store)]
    env = {"PYTHONPATH": str(root / "python"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(run, check=False, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.startswith("OK "), done.stderr[-2000:]
    flip(store / "shard-00002.arrow")
    (tmp_path / "st.json").unlink()
    done = subprocess.run(run, check=False, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1 and "shard-00002.arrow" in done.stderr, done.stderr[-2000:]
