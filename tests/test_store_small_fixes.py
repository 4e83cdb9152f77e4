"""Issue 22 item 7: a manifest's 0-sample shard entry and duplicate JSON keys are refused
(not skipped, not last-wins); a path to a file is StoreNotFoundError; the loader's memory check
compares with the memory available now, not the machine's total."""

from __future__ import annotations

import json

import pytest
from mobileclip_fastload import FastReinforcedLoader, Store, StoreFormatError, StoreNotFoundError
from mobileclip_fastload.testing.synthetic_store import make_store


@pytest.fixture
def store(tmp_path):
    # Schema 1: these tests edit manifest.json's shard entries (schema 2 keeps them in shards.idx).
    make_store(tmp_path / "s", n=9, J=1, S=1, K=1, D=4, seed=1, schema_version=1)
    return tmp_path / "s"


def test_a_path_to_a_file_is_store_not_found(store):
    with pytest.raises(StoreNotFoundError):
        Store(store / "manifest.json")


def test_a_shard_entry_of_zero_samples_is_refused(store):
    manifest = json.loads((store / "manifest.json").read_text())
    empty = dict(manifest["shards"][0], file="shard-09999.arrow", num_samples=0)
    manifest["shards"].append(empty)
    (store / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreFormatError, match=r"shard-09999\.arrow: num_samples is 0"):
        Store(store)


@pytest.mark.parametrize("where", ["top", "shard"])
def test_duplicate_keys_are_refused_not_last_wins(store, where):
    text = (store / "manifest.json").read_text()
    if where == "top":
        # A second num_samples that would otherwise win silently.
        text = text.replace('"num_samples"', '"num_samples": 123456, "num_samples"', 1)
    else:
        text = text.replace('"file_xxh3"', '"file_xxh3": "0000000000000000", "file_xxh3"', 1)
    (store / "manifest.json").write_text(text)
    with pytest.raises(StoreFormatError, match=r"manifest\.json.*duplicate key"):
        Store(store)


def test_the_memory_check_uses_available_memory(store):
    available = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    if available is None:
        pytest.skip("no MemAvailable here")
    side = 13_000
    per_batch = 9 * 3 * side * side * 4
    if 2 * per_batch > available:  # two buffers: the batch in flight and the one held
        with pytest.raises(MemoryError, match="memory available now"):
            FastReinforcedLoader(store, 9, image_size=side)
    else:
        pytest.skip("this machine has room for the largest batch the test store allows")
