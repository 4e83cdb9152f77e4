"""Whatever is written comes back identical, column by column, through the Rust
reader and through pyarrow."""

from __future__ import annotations

import errno
import gc
import tempfile
from pathlib import Path

import mobileclip_fastload
import numpy as np
import pyarrow as pa
import pytest
from conftest import synthetic_sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mobileclip_fastload import SampleIndexError, Store
from mobileclip_fastload.store import (
    AUG_DTYPE,
    Sample,
    StoreWriter,
    aug_record,
    float_to_bf16_bits,
    quantize_int8,
    write_manifest,
    write_shard,
)

LARGE_IMAGE = np.random.default_rng(7).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()

dims_st = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(1, 5))
tokens_st = st.lists(st.integers(0, 0xFFFF), max_size=77).map(lambda t: np.array(t, dtype=np.uint16))
image_st = st.one_of(st.binary(max_size=64), st.just(b""), st.just(LARGE_IMAGE))


@st.composite
def aug_st(draw, j: int) -> np.ndarray:
    recs = []
    for _ in range(j):
        box = (
            draw(st.integers(-50, 50)),
            draw(st.integers(-50, 50)),
            draw(st.integers(1, 2**31 - 1)),
            draw(st.integers(1, 500)),
        )
        ops = draw(st.lists(st.tuples(st.integers(0, 13), st.floats(-300, 300, allow_nan=False)), max_size=2))
        recs.append(aug_record(box, ops, null=draw(st.booleans()), hflip=draw(st.booleans())))
    return np.array(recs, dtype=AUG_DTYPE)


@st.composite
def sample_st(draw, dims: tuple[int, int, int, int]) -> Sample:
    J, S, K, D = dims
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    float_dtype = draw(st.sampled_from([np.float16, np.float32]))
    scale = draw(st.sampled_from([0.0, 1e-3, 1.0, 30.0]))
    return Sample(
        uid=draw(st.text(max_size=20)),
        image=draw(image_st),
        width=draw(st.integers(0, 2**32 - 1)),
        height=draw(st.integers(0, 2**32 - 1)),
        orig_width=draw(st.integers(0, 2**32 - 1)),
        orig_height=draw(st.integers(0, 2**32 - 1)),
        caption=draw(st.text(max_size=30)),
        caption_tokens=draw(tokens_st),
        syn_captions=draw(st.lists(st.text(max_size=15), min_size=S, max_size=S)),
        syn_tokens=draw(st.lists(tokens_st, min_size=S, max_size=S)),
        aug=draw(aug_st(J)),
        image_emb=(rng.standard_normal((J, K * D)) * scale).astype(float_dtype),
        text_emb=(rng.standard_normal((1 + S, K * D)) * scale).astype(float_dtype),
        sha256=draw(st.one_of(st.none(), st.binary(min_size=32, max_size=32))),
        flags=draw(st.integers(0, 2**32 - 1)),
    )


@st.composite
def dataset_st(draw):
    dims = draw(dims_st)
    samples = draw(st.lists(sample_st(dims), max_size=6))
    return dims, samples


def stored(x: np.ndarray, dtype: str, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """What the store must hold for embedding input `x`."""
    if dtype == "float16":
        return x.astype(np.float16), None
    if dtype == "bfloat16":
        return float_to_bf16_bits(x), None
    return quantize_int8(x, k)


def assert_same_sample(got: Sample, want: Sample, dtype: str, k: int) -> None:
    assert got.uid == want.uid
    assert got.image == want.image
    assert (got.width, got.height, got.orig_width, got.orig_height) == (
        want.width,
        want.height,
        want.orig_width,
        want.orig_height,
    )
    assert got.caption == want.caption
    np.testing.assert_array_equal(got.caption_tokens, want.caption_tokens)
    assert got.caption_tokens.dtype == np.uint16
    assert got.syn_captions == want.syn_captions
    assert len(got.syn_tokens) == len(want.syn_tokens)
    for a, b in zip(got.syn_tokens, want.syn_tokens):
        np.testing.assert_array_equal(a, b)
    assert got.aug.dtype == AUG_DTYPE
    assert got.aug.tobytes() == want.aug.tobytes()
    for name, scale_name in (("image_emb", "image_emb_scale"), ("text_emb", "text_emb_scale")):
        values, scales = stored(getattr(want, name), dtype, k)
        got_values = getattr(got, name)
        assert got_values.dtype == values.dtype, name
        assert got_values.tobytes() == values.tobytes(), name
        if scales is None:
            assert getattr(got, scale_name) is None
        else:
            np.testing.assert_array_equal(getattr(got, scale_name), scales)
    assert got.sha256 == want.sha256
    assert got.flags == want.flags


def pyarrow_rows(store_dir: Path) -> list[dict]:
    rows = []
    store = Store(store_dir)
    for shard in map(store.shard_entry, range(store.num_shards)):
        with pa.memory_map(str(store_dir / shard["file"])) as source:
            rows += pa.ipc.open_file(source).read_all().to_pylist()
    return rows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    data=dataset_st(),
    dtype=st.sampled_from(["float16", "bfloat16", "int8"]),
    shard_bytes=st.sampled_from([1, 2000, 1 << 30]),
)
@pytest.mark.slow
def test_round_trip(data, dtype, shard_bytes):
    (J, S, K, D), samples = data
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        with StoreWriter(path, J=J, S=S, K=K, D=D, embedding_dtype=dtype, target_shard_bytes=shard_bytes) as w:
            for s in samples:
                w.add(s)
        store = Store(path)
        assert len(store) == len(samples)
        assert store.dims == {"J": J, "S": S, "K": K, "D": D}
        assert store.embedding_dtype == dtype
        for i, want in enumerate(samples):
            assert_same_sample(store.sample(i), want, dtype, K)
            assert_same_sample(store[i - len(samples)], want, dtype, K)
            # The single-row accessors agree with the whole-sample ones.
            assert store.image(i).tobytes() == want.image
            j = i % J
            np.testing.assert_array_equal(store.image_emb(i, j), store.image_embs(i)[j])
            for s in range(S):
                np.testing.assert_array_equal(store.syn_tokens(i, s), want.syn_tokens[s])
        assert store.verify() == []

        # pyarrow reads the very same values.
        rows = pyarrow_rows(path)
        assert len(rows) == len(samples)
        for row, want in zip(rows, samples):
            assert row["uid"] == want.uid and row["image"] == want.image and row["caption"] == want.caption
            assert row["syn_captions"] == want.syn_captions
            assert row["caption_tokens"] == want.caption_tokens.tolist()
            assert row["aug"] == want.aug.tobytes()
            assert row["sha256"] == want.sha256 and row["flags"] == want.flags
            values, scales = stored(want.image_emb, dtype, K)
            np.testing.assert_array_equal(np.array(row["image_emb"], dtype=values.dtype), values.reshape(-1))
            if scales is not None:
                np.testing.assert_array_equal(np.array(row["image_emb_scale"], np.float32), scales.reshape(-1))


@pytest.mark.slow
def test_views_are_read_only_zero_copy_and_keep_the_mapping_alive(make_store):
    store = Store(make_store(4))
    emb = store.image_embs(2)
    image = store.image(1)
    assert not emb.flags.writeable and not image.flags.writeable
    # The base keeps the shard's mapping alive (a remote store's cache may unmap it from the store).
    assert not emb.flags.owndata and type(emb.base).__name__ == "MappedShard"
    assert not image.flags.owndata and type(image.base).__name__ == "MappedShard"
    with pytest.raises(ValueError, match="read-only"):
        emb[0, 0] = 1
    want_emb, want_image = emb.copy(), image.tobytes()
    assert want_image == synthetic_sample(1).image
    del store  # the views alone must keep the mapping alive
    gc.collect()
    # Allocate and touch memory of the mapping's size, so a freed mapping would be reused or unmapped.
    churn = [np.full(1 << 16, 0xA5, dtype=np.uint8) for _ in range(64)]
    np.testing.assert_array_equal(emb, want_emb)
    assert image.tobytes() == want_image
    del churn


def test_store_metadata_and_indexing(make_store):
    path = make_store(9, shard_samples=4)
    store = Store(path)
    assert store.num_shards >= 2
    assert store.manifest["num_samples"] == 9
    assert sum(store.shard_entry(n)["num_samples"] for n in range(store.num_shards)) == 9
    assert str(store.shard_path(-1)).endswith(store.shard_entry(store.num_shards - 1)["file"])
    assert store.uid(-9) == store.uid(0)
    for bad in (9, -10, 2**40):
        with pytest.raises(SampleIndexError, match="out of range"):
            store.uid(bad)
    with pytest.raises(IndexError):
        store.image_emb(0, 3)
    with pytest.raises(IndexError):
        store.syn_tokens(0, 2)
    assert set(store.column_bytes()) >= {"image", "image_emb", "aug"}
    assert store.image_emb_scales(0) is None
    assert [s.uid for s in store] == [store.uid(i) for i in range(9)]


def test_empty_store_and_empty_shard(tmp_path):
    with StoreWriter(tmp_path / "empty", J=1, S=1, K=1, D=1) as w:
        pass
    assert len(Store(w.path)) == 0
    info = write_shard(tmp_path / "shard-00000.arrow", [], dims={"J": 2, "S": 1, "K": 1, "D": 3})
    assert info.num_samples == 0
    # A store lists only shards that hold samples: a manifest naming an empty one is refused, never skipped.
    with pytest.raises(ValueError, match=r"shard-00000\.arrow: num_samples is 0"):
        write_manifest(tmp_path, [info], {"J": 2, "S": 1, "K": 1, "D": 3}, "float16", {"note": "empty"})
    assert not (tmp_path / "manifest.json").exists()


def test_writer_refuses_a_non_empty_directory_unless_overwriting(tmp_path, make_store):
    path = make_store(3)
    with pytest.raises(FileExistsError) as refused:
        StoreWriter(path, J=3, S=2, K=2, D=4)
    assert isinstance(refused.value, mobileclip_fastload.StoreExistsError)
    assert refused.value.errno == errno.EEXIST and refused.value.filename == str(path)
    with StoreWriter(path, J=1, S=1, K=1, D=2, overwrite=True):
        pass
    assert len(Store(path)) == 0 and not list(path.glob("shard-*"))
    (path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not part of a store"):
        StoreWriter(path, J=1, S=1, K=1, D=2, overwrite=True)


def test_failed_writer_leaves_no_manifest(tmp_path):
    # the writer's __exit__ under an exception is what is tested, hence two statements in the block
    writer = StoreWriter(tmp_path / "s", J=3, S=2, K=2, D=4, target_shard_bytes=1)
    with pytest.raises(RuntimeError), writer as w:  # noqa: PT012
        w.add(synthetic_sample(0))
        raise RuntimeError("interrupted")
    assert not (tmp_path / "s" / "manifest.json").exists()
    assert not list((tmp_path / "s").glob(".*tmp*"))
