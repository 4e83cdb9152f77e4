"""Random damage to a real shard: every corruption is refused at first use or reported
by verify; nothing panics, nothing passes silently with different data."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mobileclip_fastload import FastloadError, Store, _core
from store_contents import read_everything


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    from conftest import synthetic_sample
    from mobileclip_fastload.store import StoreWriter

    path = tmp_path_factory.mktemp("fuzz") / "store"
    with StoreWriter(path, J=2, S=2, K=2, D=3, embedding_dtype="int8") as w:
        for i in range(5):
            w.add(synthetic_sample(i, J=2, S=2, K=2, D=3))
    return path


damage_st = st.one_of(
    st.tuples(
        st.just("flip"),
        st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=4),
    ),
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=16)),
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=damage_st)
def test_damage_is_always_caught(pristine, damage):
    original = read_everything(Store(pristine))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        shutil.copytree(pristine, path)
        shard = path / "shard-00000.arrow"
        data = bytearray(shard.read_bytes())
        kind, arg = damage
        if kind == "flip":
            for where, bit in arg:
                data[int(where * len(data))] ^= 1 << bit
        elif kind == "truncate":
            data = data[: int(arg * len(data))]
        else:
            data += arg
        if bytes(data) == shard.read_bytes():
            return  # two flips of the same bit cancelled out
        shard.write_bytes(data)

        problems = _core.verify_store(str(path))
        assert problems, f"{kind} went unreported by verify_store"
        assert all("shard-00000.arrow" in p for p in problems)
        store = Store(path)  # reads only the manifest: the shard is checked on first use
        try:
            store.uid(0)
        except FastloadError:
            return
        assert store.verify(), f"{kind}: opened and verified clean"
        got = read_everything(store)
        # Reading succeeds; the data may differ (verify reported it) but never crashes.
        assert len(got) == len(original)
