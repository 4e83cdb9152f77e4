"""Schema 2 (docs/FORMAT.md): a small manifest.json plus shards.idx, whose head is read at open and whose
entries are read when a shard is first used. Same samples as schema 1; damage to the index is refused with
the file named; a schema-1 store (committed fixture) still reads; the previous release refuses schema 2
by its version."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import pytest
from conftest import collect_batches, synthetic_sample, tiny_png
from mobileclip_fastload import FastReinforcedLoader, SchemaVersionError, Store, StoreFormatError
from mobileclip_fastload.store import StoreWriter, aug_records
from remote_s3 import options, upload
from store_contents import read_everything

V1_FIXTURE = Path(__file__).parent / "data" / "store-v1"
DIMS = {"J": 2, "S": 2, "K": 2, "D": 4}


def write(path: Path, n: int, schema_version: int, per_shard: int = 4) -> Path:
    first = synthetic_sample(0, **DIMS)
    target = (len(first.image) + first.image_emb.size * 2 + first.text_emb.size * 2) * per_shard
    with StoreWriter(path, **DIMS, target_shard_bytes=target, schema_version=schema_version) as w:
        for i in range(n):
            image, width, height = tiny_png(i)
            sample = synthetic_sample(i, **DIMS, image=image, size=(width, height))
            # Whole-image boxes, no ops: the random magnitudes of synthetic ops are not all valid to replay.
            w.add(dataclasses.replace(sample, aug=aug_records([None] * DIMS["J"], width=width, height=height)[0]))
    return path


@pytest.fixture
def both(tmp_path) -> tuple[Path, Path]:
    return write(tmp_path / "v1", 19, 1), write(tmp_path / "v2", 19, 2)


def test_schema_2_reads_as_schema_1(both):
    v1, v2 = both
    header = json.loads((v2 / "manifest.json").read_text())
    assert header["schema_version"] == 2 and "shards" not in header
    assert header["shard_index"]["file"] == "shards.idx" and (v2 / "shards.idx").is_file()
    a, b = Store(v1), Store(v2)
    assert len(a) == len(b) == 19 and a.num_shards == b.num_shards >= 4
    assert b.shards_mapped == 0
    assert [a.shard_entry(n) for n in range(a.num_shards)] == [b.shard_entry(n) for n in range(b.num_shards)]
    assert a.file_bytes == b.file_bytes
    assert read_everything(a) == read_everything(b)
    assert a.verify() == b.verify() == []
    kw = {"batch_size": 4, "image_size": 16, "num_threads": 1, "seed": 2, "image_dtype": "uint8"}
    for x, y in zip(
        collect_batches(FastReinforcedLoader(v1, **kw)), collect_batches(FastReinforcedLoader(v2, **kw)), strict=True
    ):
        assert x.keys() == y.keys() and all(bool((x[k] == y[k]).all()) for k in x)


def test_index_entries_are_read_only_when_their_shard_is_used(both):
    _, v2 = both
    idx = v2 / "shards.idx"
    data = bytearray(idx.read_bytes())
    data[-20] ^= 0x40  # inside the last shard's entry
    idx.write_bytes(bytes(data))
    store = Store(v2)  # the head is intact: opens
    last = store.num_shards - 1
    assert store.sample(0).uid == "00000000"
    with pytest.raises(StoreFormatError, match=rf"shards\.idx.*entry of shard {last} is damaged"):
        store.shard_entry(last)
    assert any("shards.idx" in p and f"shard {last}" in p for p in store.verify())


@pytest.mark.parametrize("damage", ["head byte", "truncated", "missing"])
def test_a_damaged_index_is_refused_at_open(both, damage):
    _, v2 = both
    idx = v2 / "shards.idx"
    data = bytearray(idx.read_bytes())
    if damage == "head byte":
        data[40] ^= 1
        idx.write_bytes(bytes(data))
    elif damage == "truncated":
        idx.write_bytes(bytes(data[:-3]))
    else:
        idx.unlink()
    with pytest.raises(StoreFormatError, match=r"shards\.idx"):
        Store(v2)


def test_crafted_counts_in_the_index_are_refused(both):
    """A consistent head (its xxh3 updated in the manifest) claiming 2^36 samples in shard 0."""
    xxh3_64_intdigest = pytest.importorskip("xxhash").xxh3_64_intdigest

    _, v2 = both
    header = json.loads((v2 / "manifest.json").read_text())
    shards = header["num_shards"]
    data = bytearray((v2 / "shards.idx").read_bytes())
    starts = list(struct.unpack_from(f"<{shards + 1}Q", data, 32))
    delta = 2**36 - (starts[1] - starts[0])
    starts = [starts[0]] + [s + delta for s in starts[1:]]
    struct.pack_into(f"<{shards + 1}Q", data, 32, *starts)
    (v2 / "shards.idx").write_bytes(bytes(data))
    header["num_samples"] = starts[-1]
    header["shard_index"]["head_xxh3"] = f"{xxh3_64_intdigest(bytes(data[: 32 + 16 * shards + 8])):016x}"
    (v2 / "manifest.json").write_text(json.dumps(header))
    with pytest.raises(StoreFormatError, match=r"shards\.idx.*shard 0: claims 68719476736 samples"):
        Store(v2)


def test_the_committed_schema_1_store_still_reads():
    store = Store(V1_FIXTURE)
    manifest = json.loads((V1_FIXTURE / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and len(manifest["shards"]) == store.num_shards == 2
    assert len(store) == 5 and store.verify() == []
    assert [store.sample(i).uid for i in range(5)] == [f"{i:08d}" for i in range(5)]
    assert store.sample(3).syn_captions == ["synthetic caption 0 of 3", "synthetic caption 1 of 3"]
    assert store.caption_sets == [("syn_text", 2)]  # schema 1 has one set
    assert store.shard_entry(1) == {
        k: manifest["shards"][1][k] for k in ("file", "num_samples", "file_bytes", "file_xxh3", "columns")
    }


def test_a_reader_refuses_a_newer_schema_by_its_version(both):
    """What an older release does with a schema-2 store (checked by hand with the release before schema 2:
    "schema version 2 is newer than the newest this reader supports (1)"): this reader, meeting a store one
    version past its own, refuses it the same way, naming both versions, before reading anything else."""
    from mobileclip_fastload import _core

    _, v2 = both
    header = json.loads((v2 / "manifest.json").read_text())
    newer = _core.SCHEMA_VERSION + 1
    header["schema_version"] = newer
    (v2 / "manifest.json").write_text(json.dumps(header))
    with pytest.raises(
        SchemaVersionError,
        match=rf"schema version {newer} is newer than the newest this reader "
        rf"supports \({_core.SCHEMA_VERSION}\)",
    ):
        Store(v2)


def test_schema_2_keeps_names_that_are_not_positional(tmp_path):
    """Once refused ("schema 2 names shards by position"): the index's names section carries them now."""
    from mobileclip_fastload.store import write_manifest, write_shard

    info = write_shard(tmp_path / "part-a.arrow", [synthetic_sample(0, **DIMS)], dims=DIMS)
    write_manifest(tmp_path, [info], DIMS, "float16", schema_version=2)
    assert Store(tmp_path).shard_entry(0)["file"] == "part-a.arrow" and Store(tmp_path).verify() == []
    with pytest.raises(ValueError, match="schema_version must be 1 or 2"):
        write_manifest(tmp_path, [info], DIMS, "float16", schema_version=3)


def test_a_schema_2_store_from_object_storage(both, tmp_path, s3, s3_endpoint):
    _, v2 = both
    url = upload(s3, v2, "v2")
    remote = Store(url, cache_dir=tmp_path / "cache", storage_options=options(s3_endpoint))
    assert remote.cache_stats()["downloads"] == 0
    assert read_everything(remote) == read_everything(Store(v2))
    assert remote.shard_entry(2) == Store(v2).shard_entry(2)
    assert remote.verify() == []


def test_fixture_is_what_the_writer_makes(tmp_path):
    """The committed fixture (written by the schema-1 release, main at ac2bb96) holds synthetic samples 0..4:
    today's writer, asked for schema 1, writes the same samples."""
    again = tmp_path / "store-v1"
    with StoreWriter(again, **DIMS, target_shard_bytes=1200, schema_version=1) as w:
        for i in range(5):
            w.add(synthetic_sample(i, **DIMS))
    assert read_everything(Store(again)) == read_everything(Store(V1_FIXTURE))


def test_writers_write_schema_2_unless_asked_for_1(tmp_path):
    """Schema 2 is what every writer produces by default (a store of any size opens from a small header)."""
    from mobileclip_fastload._core import DEFAULT_WRITE_SCHEMA, INDEX_FILE
    from mobileclip_fastload.store import write_manifest, write_shard

    assert DEFAULT_WRITE_SCHEMA == 2
    with StoreWriter(tmp_path / "w", **DIMS) as w:
        w.add(synthetic_sample(0, **DIMS))
    (tmp_path / "m").mkdir()
    info = write_shard(tmp_path / "m" / "shard-00000.arrow", [synthetic_sample(1, **DIMS)], dims=DIMS)
    write_manifest(tmp_path / "m", [info], DIMS, "float16")
    for path in (tmp_path / "w", tmp_path / "m"):
        header = json.loads((path / "manifest.json").read_text())
        assert header["schema_version"] == 2 and "shards" not in header and (path / INDEX_FILE).is_file()
        store = Store(path)
        assert (len(store), store.num_shards, store.shard_entry(0)["file"]) == (1, 1, "shard-00000.arrow")
    # Schema 1 only when asked: one entry per shard in manifest.json, no index.
    with StoreWriter(tmp_path / "v1", **DIMS, schema_version=1) as w:
        w.add(synthetic_sample(0, **DIMS))
    header = json.loads((tmp_path / "v1" / "manifest.json").read_text())
    assert header["schema_version"] == 1 and len(header["shards"]) == 1 and not (tmp_path / "v1" / INDEX_FILE).exists()
