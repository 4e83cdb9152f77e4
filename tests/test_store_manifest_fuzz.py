"""Hypothesis mutates manifest fields (counts, sizes, dims, names, checksums, caption sets, nesting) of a real
store (schema 1, or schema 2 with two caption sets);
opening it, reading every sample and taking a loader batch either works or raises a FastloadError
(or a ValueError for settings), never aborts, never panics across the FFI. The examples run in a
child process, so an abort fails this test instead of killing the suite."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHILD_FLAG = "MOBILECLIP_FASTLOAD_MANIFEST_FUZZ_CHILD"


@pytest.mark.slow
def test_manifest_fuzz_never_aborts():
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, CHILD_FLAG: "1", "PYTHONPATH": str(root / "python")}
    done = subprocess.run(
        check=False,
        args=[sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k", "inner", str(Path(__file__))],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=root,
    )
    assert done.returncode == 0, f"child rc {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert "1 passed" in done.stdout, done.stdout[-2000:]


def paths_of(value, prefix=()):
    """Every path into a JSON value (interior nodes included)."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths_of(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths_of(v, (*prefix, i))


CRAFTED_INTS = [0, 1, -1, 2**31, 2**32 - 1, 2**36, 2**62, 2**63, 2**64 - 1, 2**64, 2**80]
leaf_values = st.one_of(
    st.sampled_from(CRAFTED_INTS),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "../shard-00000.arrow",
            "/etc/passwd",
            "shard-00000.arrow",
            "shard-00001.arrow",
            "",
            ".",
            "0123456789abcdef",
            "float16",
            "int8",
            "bfloat16",
        ]
    ),
    st.none(),
    st.booleans(),
)
json_values = st.recursive(
    leaf_values,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
actions = st.one_of(
    # A shard count changed with num_samples kept equal to the sum (wrapping as a u64 would), so that the
    # claim reaches the checks behind the sum check.
    st.tuples(st.just("consistent count"), st.sampled_from(CRAFTED_INTS[1:10]) | st.integers(0, 2**64 - 1)),
    st.tuples(st.just("set"), json_values),
    st.tuples(st.just("delete"), st.none()),
    st.tuples(st.just("wrap"), st.none()),
    st.tuples(st.just("duplicate"), st.none()),
)


def mutate(manifest: dict, path: tuple, action: str, value) -> dict:
    m = copy.deepcopy(manifest)
    if action == "consistent count" and "shards" not in m:  # schema 2: the counts are in shards.idx
        m["num_samples"] = value
        return m
    if action == "consistent count":
        shard = path[1] if len(path) > 1 and path[0] == "shards" else 0
        m["shards"][shard]["num_samples"] = value
        m["num_samples"] = sum(s["num_samples"] for s in m["shards"]) % 2**64
        return m
    if not path:
        return value if action == "set" else [m] if action == "wrap" else m
    parent = m
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "set":
        parent[key] = value
    elif action == "delete":
        del parent[key]
    elif action == "wrap":
        parent[key] = [parent[key]]
    elif isinstance(parent, list):  # duplicate a list item (a shard listed twice, ...)
        parent.insert(key, copy.deepcopy(parent[key]))
    else:
        parent[key] = {"nested": parent[key]}
    return m


@pytest.mark.skipif(
    not os.environ.get(CHILD_FLAG), reason="runs in the child process of test_manifest_fuzz_never_aborts"
)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_inner_manifest_mutations(pristine_store, pristine_two_set_store, data):
    from mobileclip_fastload import FastloadError, FastReinforcedLoader, Store

    pristine_store = data.draw(st.sampled_from([pristine_store, pristine_two_set_store]), label="store")
    manifest = json.loads((pristine_store / "manifest.json").read_text())
    path = data.draw(st.sampled_from(list(paths_of(manifest))), label="path")
    action, value = data.draw(actions, label="action")
    mutated = mutate(manifest, path, action, value)
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp) / "store"
        shutil.copytree(pristine_store, store_dir)
        (store_dir / "manifest.json").write_text(json.dumps(mutated))
        try:
            store = Store(store_dir)
            for i in range(len(store)):
                s = store.sample(i)
                (
                    s.uid,
                    s.image,
                    s.caption,
                    s.syn_captions,
                    s.aug.tobytes(),
                    s.image_emb.tobytes(),
                    s.text_emb.tobytes(),
                )
            loader = FastReinforcedLoader(store_dir, batch_size=2, image_size=16, num_threads=1)
            for _ in zip(range(2), loader):
                pass
            if len(store.caption_sets) > 1:  # a loader drawing from one named set of the mutated list
                name = store.caption_sets[-1][0]
                one = FastReinforcedLoader(store_dir, batch_size=2, image_size=16, num_threads=1, caption_sets=[name])
                for _ in zip(range(2), one):
                    pass
        except (FastloadError, ValueError):
            pass


@pytest.fixture(scope="module")
def pristine_store(tmp_path_factory) -> Path:
    from conftest import synthetic_sample, tiny_png
    from mobileclip_fastload.store import StoreWriter

    path = tmp_path_factory.mktemp("manifest-fuzz") / "store"
    first = synthetic_sample(0, J=2, S=2, K=2, D=3)
    target = (len(first.image) + first.image_emb.size * 2 + first.text_emb.size * 2) * 3
    # Schema 1: the fuzz mutates manifest.json's shard entries (schema 2 keeps them in shards.idx).
    with StoreWriter(
        path, J=2, S=2, K=2, D=3, embedding_dtype="float16", target_shard_bytes=target, schema_version=1
    ) as w:
        for i in range(7):
            image, width, height = tiny_png(i)
            w.add(synthetic_sample(i, J=2, S=2, K=2, D=3, image=image, size=(width, height)))
    return path


@pytest.fixture(scope="module")
def pristine_two_set_store(tmp_path_factory) -> Path:
    """Schema 2 with two caption sets: the fuzz mutates the "caption_sets" list (and the header around it)."""
    from conftest import synthetic_sample, tiny_png
    from mobileclip_fastload.store import StoreWriter

    path = tmp_path_factory.mktemp("manifest-fuzz-sets") / "store"
    first = synthetic_sample(0, J=2, S=3, K=2, D=3)
    target = (len(first.image) + first.image_emb.size * 2 + first.text_emb.size * 2) * 3
    sets = [("syn_text", 2), ("syn_text_b", 1)]
    with StoreWriter(path, J=2, S=3, K=2, D=3, target_shard_bytes=target, caption_sets=sets) as w:
        for i in range(7):
            image, width, height = tiny_png(i)
            w.add(synthetic_sample(i, J=2, S=3, K=2, D=3, image=image, size=(width, height)))
    return path
