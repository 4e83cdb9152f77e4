"""Separate layout: DR shards + img2dataset image shards, joined by uid."""

import json
import os
from pathlib import Path

import pytest
from mobileclip_fastload.convert import convert
from mobileclip_fastload.testing.datacompdr import (
    assert_store_matches,
    dr_members,
    image_members,
    img2dataset_json,
    make_dataset,
    make_samples,
    open_store,
    write_tar,
)


@pytest.mark.slow
def test_resized_shuffled_missing_images(tmp_path):
    ds = make_dataset(
        tmp_path / "src",
        num_shards=2,
        samples_per_shard=7,
        layout="separate",
        emb_format="npz-deflated",
        resized_fraction=0.6,
        resize_to=32,
        missing_image_fraction=0.25,
        shuffle_images=True,
        seed=11,
    )
    out = str(tmp_path / "store")
    pattern = str(tmp_path / "src" / "images" / "{00000000..00000001}.tar")
    report = convert(ds.dr_shards, out, layout="separate", image_shards=pattern, executor="inline", progress=False)

    present = set()
    for path in ds.image_shards:
        import tarfile

        with tarfile.open(path) as tf:
            present |= {json.loads(tf.extractfile(m).read())["uid"] for m in tf if m.name.endswith(".json")}
    missing = [s for s in ds.samples if s.uid not in present]
    written = [s for s in ds.samples if s.uid in present]
    assert missing and any(s.resized for s in written)
    assert report.skipped == {"missing_image": len(missing)}
    assert sorted(report.skipped_uids("missing_image")) == sorted(s.uid for s in missing)
    d = report.as_dict()
    # resized copies are verified through img2dataset's hash of the downloaded original
    assert d["img2dataset_sha256_verified"] == sum(s.resized for s in written)
    assert d["sha256_verified"] == sum(not s.resized for s in written)
    assert d["rescaled"] == sum(s.resized for s in written)
    assert d["images_without_dr_record"] == 0
    assert_store_matches(out, written, emb_format="npz", embedding_dtype="float16")
    store = open_store(out)
    assert [store[i].uid for i in range(len(store))] == [s.uid for s in written]  # DR order, not image order
    assert store.verify() == []


def test_image_checks_specific_to_img2dataset(tmp_path):
    """Unmatched images are counted; a download whose hash differs from the DR one is a
    sha256 mismatch even when resized; a cropped (non-proportional) resize is refused."""
    samples = make_samples(5, seed=12, resized_fraction=1.0, resize_to=24, image_size=(60, 90))
    assert all(s.resized for s in samples)
    extra = make_samples(1, seed=99, start_index=50)[0]
    image_samples = []
    for k, s in enumerate(samples):
        members = dict(image_members(s))
        meta = img2dataset_json(s)
        if k == 1:
            meta["sha256"] = "0" * 64  # the URL now serves another image
        if k == 2:
            meta["original_width"] = s.orig_width * 2  # center-cropped / padded, not a plain resize
        members["json"] = json.dumps(meta).encode()
        image_samples.append((s.image_key, list(members.items())))
    image_samples.append((extra.image_key, image_members(extra)))
    src = tmp_path / "src"
    write_tar(src / "dr" / "a.tar", [(s.key, dr_members(s)) for s in samples])
    write_tar(src / "img" / "a.tar", image_samples)
    out = str(tmp_path / "store")
    report = convert(
        str(src / "dr" / "a.tar"),
        out,
        layout="separate",
        image_shards=str(src / "img"),
        executor="inline",
        progress=False,
    )
    assert report.skipped == {"sha256_mismatch": 1, "shape_mismatch": 1}
    assert report.skipped_uids("sha256_mismatch") == [samples[1].uid]
    assert report.skipped_uids("shape_mismatch") == [samples[2].uid]
    shard = report.shards[0]
    assert shard.images_without_dr_record == 1 and shard.unmatched_image_keys == [extra.image_key]
    assert_store_matches(out, [samples[0], samples[3], samples[4]], emb_format="npz", embedding_dtype="float16")


def test_pairing_and_bad_image_shard(tmp_path):
    ds = make_dataset(tmp_path / "src", num_shards=2, samples_per_shard=3, layout="separate", seed=13)
    out = str(tmp_path / "store")
    with pytest.raises(ValueError, match="cannot pair"):
        convert(
            ds.dr_shards, out, layout="separate", image_shards=ds.image_shards[:1], executor="inline", progress=False
        )
    with pytest.raises(ValueError, match="image_shards"):
        convert(ds.dr_shards, out, layout="separate", executor="inline", progress=False)
    with open(ds.image_shards[1], "wb") as f:
        f.write(b"this is no tar file at all" * 100)
    report = convert(
        ds.dr_shards, out, layout="separate", image_shards=ds.image_shards, executor="inline", progress=False
    )
    assert [s.status for s in report.shards] == ["converted", "unreadable"]
    assert "image shard" in report.shards[1].error and ds.image_shards[1] in report.shards[1].error
    assert report.samples_written == 3
    assert len(open_store(out)) == 3
    assert not os.path.exists(os.path.join(out, "_convert_done", "00000001.json"))


def test_truncated_image_shard(tmp_path):
    ds = make_dataset(
        tmp_path / "src", num_shards=1, samples_per_shard=4, layout="separate", shuffle_images=False, seed=14
    )
    data = Path(ds.image_shards[0]).read_bytes()
    cut = data.index(ds.samples[-1].image_key.encode() + b".txt")  # the last sample loses its txt and json
    Path(ds.image_shards[0]).write_bytes(data[:cut])
    out = str(tmp_path / "store")
    report = convert(
        ds.dr_shards, out, layout="separate", image_shards=ds.image_shards, executor="inline", progress=False
    )
    assert report.skipped == {"missing_image": 1}
    assert report.skipped_uids("missing_image") == [ds.samples[-1].uid]
    assert "truncated" in report.shards[0].image_tar_problem
    assert_store_matches(out, ds.samples[:3], emb_format="npz", embedding_dtype="float16")
