"""Caption sets (docs/FORMAT.md, "Caption sets"): several synthetic caption sets side by side in the
existing columns of a schema-2 store. Written by `StoreWriter(caption_sets=...)` and by the ingest tools'
`write_part` / `write_store_manifest`, listed in manifest.json and in every shard's schema metadata, read
back as `Store.caption_sets`; one set is the plain case (byte-identical to a store written without sets);
every rule of the list is refused with the file named."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import synthetic_sample
from mobileclip_fastload import Store, StoreFormatError, _core
from mobileclip_fastload.ingest import store_io
from mobileclip_fastload.store import Dims, StoreWriter
from mobileclip_fastload.store.interop import shard_schema

DIMS = {"J": 2, "S": 5, "K": 2, "D": 4}
SETS = [("syn_text", 3), ("syn_text_dfn_mscoco38k", 2)]


def write(path: Path, n: int = 7, caption_sets=SETS, per_shard: int = 3, **kw) -> Path:
    first = synthetic_sample(0, **DIMS)
    target = (len(first.image) + first.image_emb.size * 2 + first.text_emb.size * 2) * per_shard
    with StoreWriter(path, **DIMS, target_shard_bytes=target, caption_sets=caption_sets, **kw) as w:
        for i in range(n):
            w.add(synthetic_sample(i, **DIMS, seed=11))
    return path


def test_a_two_set_store_reads_back(tmp_path):
    path = write(tmp_path / "two")
    store = Store(path)
    assert store.caption_sets == SETS
    assert store.num_shards >= 2  # every shard carries the sets in its metadata
    assert json.loads((path / "manifest.json").read_text())["caption_sets"] == [
        {"name": "syn_text", "S": 3},
        {"name": "syn_text_dfn_mscoco38k", "S": 2},
    ]
    for i in range(len(store)):
        want = synthetic_sample(i, **DIMS, seed=11)
        got = store.sample(i)
        assert got.syn_captions == want.syn_captions  # the flat list: set 0's captions, then set 1's
        assert [t.tolist() for t in got.syn_tokens] == [t.tolist() for t in want.syn_tokens]
        assert store.text_emb(i).shape == (1 + DIMS["S"], DIMS["K"] * DIMS["D"])
    assert store.verify() == []
    for n in range(store.num_shards):
        shard = path / store.shard_entry(n)["file"]
        info = _core.store_shard_info(shard)
        assert info["caption_sets"] == SETS
        schema = pa.ipc.open_file(pa.memory_map(str(shard))).schema
        assert (
            schema.metadata[b"caption_sets"]
            == json.dumps([{"name": n, "S": s} for n, s in SETS], separators=(",", ":")).encode()
        )
        assert schema.equals(shard_schema(DIMS, "float16", SETS), check_metadata=True)


def test_one_set_is_the_plain_case_byte_for_byte(tmp_path):
    plain = write(tmp_path / "plain", caption_sets=None)
    one = write(tmp_path / "one", caption_sets=[("syn_text", 5)])
    files = sorted(p.name for p in plain.iterdir())
    assert files == sorted(p.name for p in one.iterdir())
    for name in files:
        assert (plain / name).read_bytes() == (one / name).read_bytes(), name
    assert "caption_sets" not in json.loads((plain / "manifest.json").read_text())
    assert Store(one).caption_sets == [("syn_text", 5)]
    assert _core.store_shard_info(plain / "shard-00000.arrow")["caption_sets"] == [("syn_text", 5)]


@pytest.mark.parametrize(
    ("caption_sets", "match"),
    [
        ([("syn_text", 3), ("syn_text", 2)], "listed twice"),
        ([("syn_text", 3), ("", 2)], "empty name"),
        ([("syn_text", 3), ("b\x00", 2)], "control character"),
        ([("syn_text", 5), ("b", 0)], "S=0"),
        ([("syn_text", 3), ("b", -2)], "S=0"),
        ([("syn_text", 3), ("b", 3)], "sum to 6, but dims S is 5"),
        ([("syn_text", 4)], "sum to 4, but dims S is 5"),
        ([], "empty"),
        ("syn_text", "sequence of \\(name, S\\) pairs"),
        ([("syn_text", 3, 1)], "sequence of \\(name, S\\) pairs"),
    ],
)
def test_the_writer_refuses_a_bad_list(tmp_path, caption_sets, match):
    with pytest.raises(ValueError, match=match):
        StoreWriter(tmp_path / "bad", **DIMS, caption_sets=caption_sets)


def test_schema_1_holds_one_set(tmp_path):
    with pytest.raises(ValueError, match="schema_version 2"):
        StoreWriter(tmp_path / "v1", **DIMS, caption_sets=SETS, schema_version=1)
    # One set stays writable as schema 1 (the plain case).
    assert Store(write(tmp_path / "v1-one", caption_sets=[("syn_text", 5)], schema_version=1)).caption_sets == [
        ("syn_text", 5)
    ]


def test_one_set_of_another_name_keeps_its_name(tmp_path):
    """DFNDR's syn_text_<tag> converted alone: the store says which set it holds (Apple's set regex finds it)."""
    one = [("syn_text_dfn_mscoco38k", 5)]
    path = write(tmp_path / "tagged", caption_sets=one)
    assert json.loads((path / "manifest.json").read_text())["caption_sets"] == [{"name": one[0][0], "S": 5}]
    assert Store(path).caption_sets == one
    with pytest.raises(ValueError, match="schema_version 2"):
        StoreWriter(tmp_path / "v1-tagged", **DIMS, caption_sets=one, schema_version=1)


def test_the_ingest_tools_write_parts_and_manifest_with_sets(tmp_path):
    """What convert and reinforce call (ingest/store_io.py): parts named by task, then the manifest."""
    out = tmp_path / "ingested"
    out.mkdir()
    opts = types.SimpleNamespace(dims=Dims(**DIMS), embedding_dtype="bfloat16", caption_sets=SETS)
    infos = []
    for part, rows in enumerate([range(4), range(4, 6)]):
        name = store_io.output_name("00000042", part)
        samples = [synthetic_sample(i, **DIMS) for i in rows]
        infos.append(store_io.write_part(str(out / name), samples, opts))
    store_io.write_store_manifest(str(out), infos, opts, {"tool": "test"})
    store = Store(out)
    assert store.caption_sets == SETS and len(store) == 6
    assert store.sample(5).syn_captions == synthetic_sample(5, **DIMS).syn_captions
    assert store.verify() == []
    assert store_io.verify_output(str(out / store_io.output_name("00000042", 1)), infos[1], checksum=True)


def test_shards_and_manifest_must_list_the_same_sets(tmp_path):
    out = tmp_path / "mismatch"
    out.mkdir()
    parts = types.SimpleNamespace(dims=Dims(**DIMS), embedding_dtype="float16", caption_sets=SETS)
    info = store_io.write_part(str(out / "a-000.arrow"), [synthetic_sample(0, **DIMS)], parts)
    manifest = types.SimpleNamespace(**(vars(parts) | {"caption_sets": [("syn_text", 4), ("other", 1)]}))
    store_io.write_store_manifest(str(out), [info], manifest, {})
    store = Store(out)  # opening reads the manifest only; the shard is checked when first used
    with pytest.raises(StoreFormatError, match=r"a-000\.arrow.*caption sets"):
        store.sample(0)
    problems = store.verify()
    assert problems and "caption sets" in str(problems[0])


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda sets: [dict(sets[0], S=5)], "the plain case"),
        (lambda sets: [], "at least one"),
        (lambda sets: [sets[0], dict(sets[1], S=3)], "dims S is 5"),
        (lambda sets: [sets[0], dict(sets[1], name="syn_text")], "listed twice"),
        (lambda sets: [sets[0], dict(sets[1], name="a\tb")], "control character"),
        (lambda sets: [dict(sets[0], S=0), dict(sets[1], S=5)], "S=0"),
        (lambda sets: None, "caption_sets"),
        (lambda sets: [sets[0], dict(sets[1], extra=1)], "unknown field"),
    ],
)
def test_a_manifest_breaking_a_rule_is_refused_at_open(tmp_path, edit, match):
    path = write(tmp_path / "edited")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["caption_sets"] = edit(manifest["caption_sets"])
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreFormatError, match=f"manifest.json.*{match}"):
        Store(path)


def test_a_manifest_without_the_key_refuses_shards_that_list_sets(tmp_path):
    path = write(tmp_path / "dropped")
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["caption_sets"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    store = Store(path)
    assert store.caption_sets == [("syn_text", 5)]
    with pytest.raises(StoreFormatError, match=r"shard-00000\.arrow.*caption sets"):
        store.sample(0)


def test_writer_reports_its_sets(tmp_path):
    with StoreWriter(tmp_path / "w", **DIMS, caption_sets=SETS) as w:
        assert w.caption_sets == SETS
        w.add(synthetic_sample(0, **DIMS))
    with StoreWriter(tmp_path / "p", **DIMS) as w:
        assert w.caption_sets == [("syn_text", 5)]
        w.add(synthetic_sample(0, **DIMS))
    assert np.array_equal(Store(tmp_path / "w").text_emb(0), Store(tmp_path / "p").text_emb(0))
