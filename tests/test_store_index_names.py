"""Shard names in a schema-2 index (docs/FORMAT.md, "Shard names"): convert writes schema 2 and keeps its
task names; names are read a checksummed block at a time when a shard is used, never at open; a crafted name
(path-like, not plain, repeated) is refused at use with shards.idx named; a remote named store reads back."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
import torch
from conftest import collect_batches, synthetic_sample
from mobileclip_fastload import FastReinforcedLoader, Store, StoreFormatError
from mobileclip_fastload.convert import convert
from mobileclip_fastload.store import ShardInfo, write_manifest, write_shard
from mobileclip_fastload.testing.datacompdr import make_dataset
from mobileclip_fastload.testing.synthetic_store import make_store
from remote_s3 import options, upload

DIMS = {"J": 2, "S": 2, "K": 2, "D": 4}
BLOCK = 1024  # shards per name block (rust/src/store/shard_index.rs)
LOADER = dict(batch_size=5, image_size=32, num_threads=2, seed=3, image_dtype="uint8", order="shard_block")


def task_name(n: int) -> str:
    return f"{n:08d}-000.arrow"


def named_store(path: Path, names: list[str]) -> Path:
    """One real shard of 2 samples, hard-linked under each name, listed in that order."""
    path.mkdir()
    real = path / ".real.arrow"
    info = write_shard(real, [synthetic_sample(i, **DIMS) for i in range(2)], dims=DIMS)
    for name in names:
        os.link(real, path / name)
    real.unlink()
    infos = [ShardInfo(name, info.num_samples, info.file_bytes, info.file_xxh3, info.columns) for name in names]
    write_manifest(path, infos, dims=DIMS, embedding_dtype="float16")
    return path


def name_blocks(path: Path) -> tuple[bytearray, int, list[int]]:
    """The index's bytes, where its names section starts, and its name block offsets (FORMAT.md's table)."""
    data = bytearray((path / "shards.idx").read_bytes())
    columns, shards, flags = struct.unpack_from("<IQQ", data, 12)
    assert flags == 1, "the index has no names section"
    blocks = -(-shards // BLOCK)
    head_end = 32 + 8 * (2 * shards + 1)
    offsets = list(struct.unpack_from(f"<{blocks + 1}Q", data, head_end))
    names_start = head_end + 8 * (blocks + 1) + shards * 8 * (columns + 2)
    assert names_start + offsets[-1] == len(data)
    return data, names_start, offsets


def test_a_converted_store_is_schema_2_with_its_task_names(tmp_path):
    dataset = make_dataset(tmp_path / "src", num_shards=3, samples_per_shard=4, layout="joined", seed=7)
    out = tmp_path / "store"
    convert(dataset.dr_shards, str(out), executor="inline", progress=False)
    header = json.loads((out / "manifest.json").read_text())
    assert header["schema_version"] == 2 and "shards" not in header
    assert header["shard_index"]["names"] is True
    store = Store(out)
    names = [store.shard_entry(n)["file"] for n in range(store.num_shards)]
    assert names == sorted(f for f in os.listdir(out) if f.endswith(".arrow"))
    assert all(not n.startswith("shard-") for n in names), names
    assert len(store) == 12 and store.verify() == []


def test_names_are_read_a_block_at_a_time_never_at_open(tmp_path):
    names = [task_name(n) for n in range(BLOCK + 76)]
    path = named_store(tmp_path / "store", names)
    data, start, offsets = name_blocks(path)
    data[start + offsets[2] - 9] ^= 0x01  # a name byte of block 1; its checksum no longer matches
    (path / "shards.idx").write_bytes(bytes(data))
    store = Store(path)  # open reads the head only: the damaged block is not touched
    assert store.shards_mapped == 0
    assert store.sample(0).uid == synthetic_sample(0, **DIMS).uid
    assert store.shard_entry(BLOCK - 1)["file"] == names[BLOCK - 1]
    with pytest.raises(StoreFormatError, match=r"shards\.idx.*name block 1 is damaged"):
        store.shard_entry(BLOCK)
    with pytest.raises(StoreFormatError, match=r"shards\.idx.*name block 1"):
        store.sample(2 * BLOCK)


@pytest.mark.parametrize("craft", ["path-like", "nested", "nul", "duplicate"])
def test_a_crafted_name_is_refused_at_use(tmp_path, craft):
    """The block's checksum re-sealed, as a deliberately crafted index would be: the name itself is refused."""
    xxh3_64_intdigest = pytest.importorskip("xxhash").xxh3_64_intdigest
    names = [task_name(n) for n in range(3)]
    path = named_store(tmp_path / "store", names)
    bad = {
        "path-like": "../" + names[1][3:],
        "nested": "a/" + names[1][2:],
        "nul": "\0" + names[1][1:],
        "duplicate": names[0],
    }[craft].encode()
    assert len(bad) == len(names[1])
    data, start, offsets = name_blocks(path)
    at = start + 4 * 3 + len(names[0])  # block 0: three u32 lengths, then the names
    data[at : at + len(bad)] = bad
    body_end = start + offsets[1] - 8
    struct.pack_into("<Q", data, body_end, xxh3_64_intdigest(bytes(data[start:body_end]) + struct.pack("<Q", 0)))
    (path / "shards.idx").write_bytes(bytes(data))
    store = Store(path)
    why = "listed twice" if craft == "duplicate" else "plain file name"
    with pytest.raises(StoreFormatError, match=rf"shards\.idx.*shard 1: file name .* {why}"):
        store.sample(0)
    assert any("shards.idx" in p and why in p for p in store.verify())


def test_a_name_repeated_in_another_block_is_reported_by_every_verify(tmp_path):
    """Names are checked unique per block as read; a crafted index repeating shard 0's name as the first
    of block 1 (checksum re-sealed) is caught by the whole-store checks: verify_store, Store.verify and
    the block-wise, resumable verify (which checked each shard alone and missed it before)."""
    from mobileclip_fastload._core import verify_store
    from mobileclip_fastload.store.verify_progress import verify

    xxh3_64_intdigest = pytest.importorskip("xxhash").xxh3_64_intdigest
    names = [task_name(n) for n in range(BLOCK + 2)]
    path = named_store(tmp_path / "store", names)
    data, start, offsets = name_blocks(path)
    block1 = start + offsets[1]
    at = block1 + 4 * 2  # block 1: two u32 lengths, then its names
    assert bytes(data[at : at + len(names[BLOCK])]) == names[BLOCK].encode()
    data[at : at + len(names[0])] = names[0].encode()
    body_end = start + offsets[2] - 8
    struct.pack_into("<Q", data, body_end, xxh3_64_intdigest(bytes(data[block1:body_end]) + struct.pack("<Q", 1)))
    (path / "shards.idx").write_bytes(bytes(data))
    expected = f"shard {BLOCK} has the file name of shard 0"
    store = Store(path)
    assert store.shard_entry(BLOCK)["file"] == names[0]  # each block alone reads
    for problems in (verify_store(str(path)), store.verify(), verify(path, block=300, progress=False)):
        assert [p for p in problems if expected in p] and len(problems) == 1, problems


def test_a_remote_named_store_reads_like_the_local_one(s3, s3_endpoint, tmp_path):
    positional = Path(make_store(tmp_path / "positional", n=24, **DIMS, seed=5, target_shard_bytes=40_000))
    source = Store(positional)
    assert source.num_shards >= 3
    local = tmp_path / "named"
    local.mkdir()
    infos = []
    for n in range(source.num_shards):
        entry = source.shard_entry(n)
        name = task_name(1000 - n)  # not in position order either
        os.link(positional / entry["file"], local / name)
        infos.append(ShardInfo.from_json({**entry, "file": name}))
    write_manifest(local, infos, dims=DIMS, embedding_dtype="float16")
    url = upload(s3, local, "named")
    cache = tmp_path / "cache"
    remote = FastReinforcedLoader(url, **LOADER, cache_dir=str(cache), storage_options=options(s3_endpoint))
    want, got = collect_batches(FastReinforcedLoader(local, **LOADER)), collect_batches(remote)
    assert len(want) == len(got) > 0
    assert all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(want, got))
    cached = {f for d in cache.iterdir() for f in os.listdir(d) if f.endswith(".arrow")}
    assert cached == {f"shard-{n:05d}.arrow" for n in range(source.num_shards)}  # kept by position
    store = Store(url, cache_dir=str(cache), storage_options=options(s3_endpoint))
    assert [store.shard_entry(n)["file"] for n in range(store.num_shards)] == [i.file for i in infos]
    assert store.verify() == []
