"""Each kind of bad input gets its own exception, naming the file and what is wrong."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import synthetic_sample
from mobileclip_fastload import (
    FastloadError,
    FastReinforcedLoader,
    SampleIndexError,
    SchemaVersionError,
    Store,
    StoreFormatError,
    StoreIOError,
    StoreNotFoundError,
    _core,
)
from mobileclip_fastload.store import AUG_DTYPE, StoreWriter, aug_records, write_shard


def shard(path: Path, n: int = 0) -> Path:
    return path / f"shard-{n:05d}.arrow"


def read_all(path: Path) -> None:
    """Open and use every sample: opening reads only the manifest; a shard is
    validated when first used, so shard damage surfaces here."""
    store = Store(path)
    for i in range(len(store)):
        store.uid(i)


def edit_manifest(path: Path, edit) -> None:
    # Tests that edit shard entries write schema 1 (`schema_version=1`): schema 2 keeps them in shards.idx.
    m = json.loads((path / "manifest.json").read_text())
    edit(m)
    (path / "manifest.json").write_text(json.dumps(m))


def test_truncated_shard(make_store):
    path = make_store(6, shard_samples=3)
    data = shard(path, 1).read_bytes()
    shard(path, 1).write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreFormatError, match=r"shard-00001\.arrow.*truncated"):
        read_all(path)
    problems = _core.verify_store(str(path))
    assert any("shard-00001.arrow" in p and "bytes" in p for p in problems)


def test_truncated_shard_with_matching_manifest_size(make_store):
    # A truncated file whose manifest entry was "fixed" to match: the Arrow trailer is gone.
    path = make_store(3, schema_version=1)
    data = shard(path).read_bytes()[:-7]
    shard(path).write_bytes(data)
    edit_manifest(path, lambda m: m["shards"][0].update(file_bytes=len(data)))
    with pytest.raises(StoreFormatError, match=r"shard-00000\.arrow.*(ARROW1|truncated)"):
        read_all(path)


def test_wrong_magic_in_manifest(make_store):
    path = make_store(2)
    edit_manifest(path, lambda m: m.update(magic="something/else"))
    with pytest.raises(StoreFormatError, match=r"manifest\.json.*magic"):
        read_all(path)


def test_not_an_arrow_file(make_store):
    path = make_store(2)
    size = shard(path).stat().st_size
    shard(path).write_bytes(b"\x89PNG" + bytes(size - 4))
    with pytest.raises(StoreFormatError, match=r"shard-00000\.arrow.*magic"):
        read_all(path)


def test_foreign_arrow_file(make_store, tmp_path):
    # A valid Arrow file that is not a store shard.
    path = make_store(2, schema_version=1)
    table = pa.table({"x": [1, 2]})
    with pa.OSFile(str(shard(path)), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    edit_manifest(path, lambda m: m["shards"][0].update(file_bytes=shard(path).stat().st_size))
    with pytest.raises(StoreFormatError, match=r"shard-00000\.arrow.*not a store shard"):
        read_all(path)
    with pytest.raises(StoreFormatError, match="not a store shard"):
        _core.store_shard_info(str(shard(path)))


def test_newer_schema_version_in_manifest(make_store):
    path = make_store(2)
    edit_manifest(path, lambda m: m.update(schema_version=99, some_future_field=[1]))
    with pytest.raises(SchemaVersionError, match=r"manifest\.json.*99.*newer"):
        read_all(path)


def test_newer_schema_version_in_shard(make_store):
    path = make_store(2, schema_version=1)
    table = pa.ipc.open_file(str(shard(path))).read_all()
    meta = dict(table.schema.metadata)
    meta[b"schema_version"] = b"2"
    table = table.replace_schema_metadata(meta)
    with pa.OSFile(str(shard(path)), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    edit_manifest(path, lambda m: m["shards"][0].update(file_bytes=shard(path).stat().st_size))
    with pytest.raises(SchemaVersionError, match=r"shard-00000\.arrow.*version 2"):
        read_all(path)


def test_missing_shard(make_store):
    path = make_store(6, shard_samples=3)
    shard(path, 1).unlink()
    with pytest.raises(StoreFormatError, match=r"shard-00001\.arrow.*missing"):
        read_all(path)
    problems = _core.verify_store(str(path))
    assert problems == [f"{shard(path, 1)}: shard file listed in the manifest is missing"]


def test_missing_or_broken_manifest(make_store, tmp_path):
    with pytest.raises(StoreNotFoundError, match=r"no manifest\.json"):
        read_all(tmp_path)
    path = make_store(2)
    (path / "manifest.json").write_text("{ not json")
    with pytest.raises(StoreFormatError, match=r"manifest\.json.*not valid JSON"):
        read_all(path)
    with pytest.raises(StoreFormatError):
        _core.verify_store(str(path))


@pytest.mark.parametrize(("key", "value"), [("J", 4), ("S", 1), ("K", 1), ("D", 8)])
def test_dims_inconsistent_with_manifest(make_store, key, value):
    path = make_store(2)
    edit_manifest(path, lambda m: m["dims"].update({key: value}))
    with pytest.raises(StoreFormatError, match=rf"shard-00000\.arrow.*{key}={value}"):
        read_all(path)


def test_manifest_sample_counts_inconsistent(make_store):
    path = make_store(4, schema_version=1)
    edit_manifest(path, lambda m: (m["shards"][0].update(num_samples=5), m.update(num_samples=5)))
    with pytest.raises(StoreFormatError, match=r"shard-00000\.arrow.*4 rows.*manifest says 5"):
        read_all(path)
    edit_manifest(path, lambda m: m.update(num_samples=3))
    with pytest.raises(StoreFormatError, match="num_samples is 3 but the shards hold 5"):
        read_all(path)


def test_dtype_inconsistent_with_manifest(make_store):
    path = make_store(2)
    edit_manifest(path, lambda m: m.update(embedding_dtype="bfloat16"))
    with pytest.raises(StoreFormatError, match=r"float16.*bfloat16"):
        read_all(path)


def test_shards_of_different_dims_cannot_be_mixed(make_store, tmp_path):
    a = make_store(2, name="a", schema_version=1)
    b = make_store(2, D=5, name="b")
    shutil.copy(shard(b), a / "shard-00001.arrow")
    info = _core.store_shard_info(str(a / "shard-00001.arrow"))
    edit_manifest(
        a,
        lambda m: (
            m["shards"].append(
                {
                    "file": "shard-00001.arrow",
                    **{k: info[k] for k in ("num_samples", "file_bytes", "file_xxh3", "columns")},
                }
            ),
            m.update(num_samples=4),
        ),
    )
    with pytest.raises(StoreFormatError, match=r"shard-00001\.arrow.*D=5.*D=4"):
        read_all(a)


def test_invalid_aug_record_in_shard(make_store):
    path = make_store(3, schema_version=1)
    table = pa.ipc.open_file(str(shard(path))).read_all()
    aug = np.frombuffer(bytearray(table.column("aug")[1].as_py()), dtype=AUG_DTYPE).copy()
    aug[2]["op1"] = 14
    col = pa.array(
        [table.column("aug")[0].as_py(), aug.tobytes(), table.column("aug")[2].as_py()], table.schema.field("aug").type
    )
    table = table.set_column(table.schema.get_field_index("aug"), table.schema.field("aug"), col)
    with pa.OSFile(str(shard(path)), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    edit_manifest(path, lambda m: m["shards"][0].update(file_bytes=shard(path).stat().st_size))
    with pytest.raises(StoreFormatError, match=r"shard-00000\.arrow.*'aug'.*row 1 record 2"):
        read_all(path)


def test_every_error_is_a_fastload_error(make_store):
    path = make_store(1)
    shard(path).write_bytes(b"")
    with pytest.raises(FastloadError):
        read_all(path)
    with pytest.raises(FastloadError):
        read_all(path / "nope")
    assert issubclass(SampleIndexError, FastloadError)


@pytest.mark.parametrize("where", ["no directory", "no manifest"])
def test_a_missing_store_is_one_file_not_found_error_from_store_and_loader(tmp_path, where):
    path = tmp_path / "store"
    if where == "no manifest":
        path.mkdir()
    for open_store in (Store, lambda p: FastReinforcedLoader(p, 4)):
        with pytest.raises(StoreNotFoundError, match=r"store: no DR store here: no manifest\.json") as info:
            open_store(path)
        e = info.value
        assert isinstance(e, FileNotFoundError) and isinstance(e, FastloadError)
        assert not isinstance(e, StoreFormatError)
        assert (e.errno, e.strerror, e.filename) == (errno.ENOENT, "No such file or directory", str(path))
    with pytest.raises(StoreNotFoundError):
        _core.verify_store(str(path))


def test_a_file_where_the_store_should_be_is_store_not_found(tmp_path):
    # A regular file where the store directory should be: no store there (README: "no store at the
    # path"), a StoreNotFoundError like a missing directory, not a bare StoreIOError (ENOTDIR).
    path = tmp_path / "a-file"
    path.write_text("")
    for open_store in (Store, lambda p: FastReinforcedLoader(p, 4)):
        with pytest.raises(StoreNotFoundError, match=r"a-file: no DR store here") as info:
            open_store(path)
        e = info.value
        assert isinstance(e, StoreIOError) and isinstance(e, FastloadError) and isinstance(e, FileNotFoundError)
        assert e.filename == str(path)


def test_a_sample_index_error_is_an_index_error(make_store):
    store = Store(make_store(3))
    with pytest.raises(IndexError, match="sample index 3 out of range"):
        store.uid(3)
    with pytest.raises(SampleIndexError):
        store[-4]
    assert issubclass(SampleIndexError, IndexError)


def test_writer_rejects_inconsistent_samples(tmp_path):
    dims = {"J": 3, "S": 2, "K": 2, "D": 4}
    cases = {
        "image_emb must have shape": lambda s: setattr(s, "image_emb", s.image_emb[:2]),
        "text_emb must have shape": lambda s: setattr(s, "text_emb", s.text_emb[:, :4]),
        "syn_captions must be 2": lambda s: setattr(s, "syn_captions", ["x"]),
        "syn_tokens must hold 2": lambda s: setattr(s, "syn_tokens", []),
        "aug must have shape": lambda s: setattr(s, "aug", s.aug[:1]),
        "at most 77": lambda s: setattr(s, "caption_tokens", np.zeros(78, np.uint16)),
        "token ids": lambda s: setattr(s, "caption_tokens", np.array([70000])),
        "sha256 must be 32 bytes": lambda s: setattr(s, "sha256", b"short"),
        "non-finite": lambda s: s.image_emb.__setitem__((0, 0), np.nan),
        "overflows float16": lambda s: s.text_emb.__setitem__((0, 0), 1e6),
        "must fit uint32": lambda s: setattr(s, "width", -1),
        "not a valid augmentation record": lambda s: s.aug.__setitem__(0, np.zeros((), AUG_DTYPE)),
        "int8 input needs its scales": lambda s: setattr(s, "image_emb", s.image_emb.astype(np.int8)),
    }
    for message, breakage in cases.items():
        s = synthetic_sample(1)
        breakage(s)
        dtype = "int8" if "int8" in message else "float16"
        with pytest.raises(ValueError, match=message) as info:
            write_shard(tmp_path / "x.arrow", [s], dims=dims, embedding_dtype=dtype)
        assert "'00000001'" in str(info.value), "the error names the sample"
    assert not list(tmp_path.iterdir()), "nothing is published on failure"
    with pytest.raises(ValueError, match="embedding_dtype"):
        StoreWriter(tmp_path / "s", J=1, S=1, K=1, D=1, embedding_dtype="float64")
    with pytest.raises(ValueError, match=">= 1"):
        StoreWriter(tmp_path / "s", J=0, S=1, K=1, D=1)


def test_aug_helpers_reject_bad_param_aug():
    with pytest.raises(ValueError, match=r"param_aug\[1\]"):
        aug_records([None, [[1, 2, 3]]], width=10, height=10)
    with pytest.raises(ValueError, match=r"param_aug\[0\].*op index 14"):
        aug_records([[[0, 0, 5, 5], [[14, 1.0]]]], width=10, height=10)
    with pytest.raises(ValueError, match=r"param_aug\[0\].*positive"):
        aug_records([[[0, 0, 0, 5], []]], width=10, height=10)


def test_open_reads_only_the_manifest_and_a_shard_is_checked_on_first_use(make_store):
    path = make_store(12, shard_samples=2, schema_version=1)
    manifest = json.loads((path / "manifest.json").read_text())
    starts = np.cumsum([0] + [e["num_samples"] for e in manifest["shards"]])
    assert len(manifest["shards"]) >= 4
    for n in range(1, len(manifest["shards"])):
        shard(path, n).unlink()  # gone: opening must not notice
    shard(path, 2).write_bytes(b"not an arrow file")
    io_before = _proc_io()
    store = Store(path)
    read_at_open = _proc_io() - io_before
    assert read_at_open <= (path / "manifest.json").stat().st_size + 64 * 1024
    assert (len(store), store.num_shards, store.shards_mapped) == (12, len(manifest["shards"]), 0)
    assert store.uid(0) == store.sample(0).uid  # shard 0 is intact and reads
    assert store.shards_mapped == 1
    with pytest.raises(StoreFormatError, match=r"shard-00001\.arrow.*missing"):
        store.uid(int(starts[1]))
    with pytest.raises(StoreFormatError, match=r"shard-00002\.arrow.*manifest says"):
        store.image(int(starts[2]))
    assert store.shards_mapped == 1


def _proc_io() -> int:
    """Bytes this process has read through read(2) and friends so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")
