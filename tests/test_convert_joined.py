"""Joined-layout DataCompDR shards -> DR store: every stored field equals the source."""

import json
import os

import numpy as np
import pytest
from mobileclip_fastload.convert import REPORT_NAME, convert
from mobileclip_fastload.store import Dims
from mobileclip_fastload.testing.datacompdr import (
    assert_store_matches,
    make_dataset,
    open_store,
)


@pytest.fixture(scope="module")
def open_clip_ids():
    """open_clip's own ids (unpadded), to check the stored tokens against the reference."""
    from open_clip.tokenizer import SimpleTokenizer

    ref = SimpleTokenizer()

    def ids(text):
        row = ref([text])[0].numpy()
        return row[: int(np.nonzero(row == 49407)[0][-1]) + 1].tolist()

    return ids


def check_report(report, out):
    """Nothing dropped uncounted, per shard and in total; the JSON report is next to the store."""
    for s in report.shards:
        assert s.samples_in == s.samples_written + sum(s.skipped.values()), s
    with open(os.path.join(out, REPORT_NAME)) as f:
        saved = json.load(f)
    assert saved["samples_in"] == report.samples_in
    assert saved["samples_written"] == report.samples_written
    assert saved["skipped"] == report.skipped
    store = open_store(out)
    assert len(store) == report.samples_written
    assert store.verify() == []


def test_npz_float16_with_resized_images(tmp_path, open_clip_ids):
    ds = make_dataset(
        tmp_path / "src",
        num_shards=2,
        samples_per_shard=6,
        layout="joined",
        emb_format="npz",
        json_mode="merged",
        resized_fraction=0.5,
        resize_to=32,
        seed=1,
    )
    assert any(s.resized for s in ds.samples) and any(not s.resized for s in ds.samples)
    out = str(tmp_path / "store")
    report = convert(str(tmp_path / "src" / "dr" / "{00000000..00000001}.tar"), out, executor="inline", progress=False)
    assert report.samples_written == len(ds.samples) and report.skipped == {}
    assert report.dims == {"J": 4, "S": 3, "K": 2, "D": 16}
    d = report.as_dict()
    assert d["rescaled"] == sum(s.resized for s in ds.samples)
    assert d["sha256_verified"] == sum(not s.resized for s in ds.samples)
    assert d["unverified"] == sum(s.resized for s in ds.samples)  # joined: no img2dataset hash to check
    assert 0 < d["cosine_error"]["max"] < 1e-5
    check_report(report, out)
    assert_store_matches(out, ds.samples, emb_format="npz", embedding_dtype="float16", tokenizer=open_clip_ids)
    # global order = input shard order, then sample order
    store = open_store(out)
    assert [store[i].uid for i in range(len(store))] == [s.uid for s in ds.samples]


def test_pth_gz_bfloat16_paug_string_null_entries(tmp_path, open_clip_ids):
    ds = make_dataset(
        tmp_path / "src",
        num_shards=1,
        samples_per_shard=6,
        layout="joined",
        emb_format="pth.gz",
        paug_as_string=True,
        null_aug_fraction=0.3,
        seed=2,
        long_caption_fraction=0.5,
    )
    assert any(e is None for s in ds.samples for e in s.param_aug)
    out = str(tmp_path / "store")
    report = convert(ds.dr_shards, out, executor="inline", progress=False, embedding_dtype="bfloat16")
    assert report.samples_written == 6
    assert report.cosine_error["max"] < 1e-12  # bf16 source stored as bf16: exact up to float64 rounding
    check_report(report, out)
    assert_store_matches(out, ds.samples, emb_format="pth.gz", embedding_dtype="bfloat16", tokenizer=open_clip_ids)


def test_int8_reports_cosine_error_and_first_n_augmentations(tmp_path):
    ds = make_dataset(
        tmp_path / "src",
        num_shards=1,
        samples_per_shard=5,
        layout="joined",
        emb_format="npz-deflated",
        seed=3,
        dims=Dims(J=6, S=2, K=2, D=32),
    )
    out = str(tmp_path / "store")
    report = convert(ds.dr_shards, out, executor="inline", progress=False, embedding_dtype="int8", max_augmentations=3)
    assert report.dims == {"J": 3, "S": 2, "K": 2, "D": 32}
    ce = report.cosine_error
    assert 0 < ce["mean"] <= ce["max"] < 1e-3
    assert ce["slices"] == 5 * (3 + 1 + 2) * 2
    check_report(report, out)
    assert_store_matches(out, ds.samples, emb_format="npz", embedding_dtype="int8", max_augmentations=3)


def test_dr_json_overwrote_sizes_resized_images_are_skipped(tmp_path):
    """The documented extract-and-retar recipe loses original_width/height: a resized image's
    boxes cannot be placed, so it is skipped (counted); originals are verified by sha256."""
    ds = make_dataset(
        tmp_path / "src",
        num_shards=1,
        samples_per_shard=8,
        layout="joined",
        json_mode="dr",
        resized_fraction=0.5,
        seed=4,
    )
    resized = [s for s in ds.samples if s.resized]
    assert resized
    out = str(tmp_path / "store")
    report = convert(ds.dr_shards, out, executor="inline", progress=False)
    assert report.skipped == {"unknown_original_size": len(resized)}
    assert sorted(report.skipped_uids("unknown_original_size")) == sorted(s.uid for s in resized)
    check_report(report, out)
    assert_store_matches(out, [s for s in ds.samples if not s.resized], emb_format="npz", embedding_dtype="float16")


def test_tagged_synthetic_caption_sets(tmp_path):
    ds = make_dataset(
        tmp_path / "src", num_shards=1, samples_per_shard=4, layout="joined", seed=5, syn_tags=["coca", "blip"]
    )
    out = str(tmp_path / "store")
    report = convert(ds.dr_shards, out, executor="inline", progress=False, syn_key="blip")
    assert report.caption_sets == [["syn_text_blip", 3]] and report.samples_written == 4
    check_report(report, out)
    assert_store_matches(out, ds.samples, emb_format="npz", embedding_dtype="float16", syn_key="syn_text_blip")


def test_target_shard_bytes_splits_an_input_shard(tmp_path):
    ds = make_dataset(tmp_path / "src", num_shards=2, samples_per_shard=5, layout="joined", seed=6)
    out = str(tmp_path / "store")
    report = convert(ds.dr_shards, out, executor="inline", progress=False, target_shard_bytes=1)
    assert [len(s.outputs) for s in report.shards] == [5, 5]
    written = open_store(out)
    files = [written.shard_entry(n)["file"] for n in range(written.num_shards)]
    assert files == [f"{k:08d}-{p:03d}.arrow" for k in range(2) for p in range(5)]
    check_report(report, out)
    store = open_store(out)
    assert [store[i].uid for i in range(len(store))] == [s.uid for s in ds.samples]
