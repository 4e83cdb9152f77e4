"""Source shards -> convert -> store -> loader: every delivered image equals
the Pillow + torchvision reference applied to the *source* image bytes with
the upstream `param_aug` entry read from the source sample (box rescaled here,
independently of the converter, where the image was resized), so a converter
that loses or alters what the shards hold fails it. Formats the loader's
decoder cannot reproduce exactly (WebP here) are stored as lossless PNGs of
Pillow's pixels and flagged."""

from __future__ import annotations

import io

import numpy as np
import pytest
from mobileclip_fastload import FastReinforcedLoader, Store
from mobileclip_fastload.convert import convert
from mobileclip_fastload.loader import TRAINING_INTERPOLATION
from mobileclip_fastload.reference import reference_replay
from mobileclip_fastload.store import FLAG_IMAGE_TRANSCODED
from mobileclip_fastload.testing.datacompdr import DRSample, expected_box, make_dataset
from PIL import Image

MAX_EPOCHS = 60  # the loader draws one augmentation per sample and epoch: enough epochs to see all J


def source_entry(src: DRSample, j: int):
    """The upstream entry `j` as the reference must see it: null stays null; a box drawn on the
    original image is mapped to the stored image's pixels (edges scaled, rounded half up)."""
    entry = src.param_aug[j]
    if entry is None or not src.resized:
        return entry
    box = expected_box(entry[0], (src.orig_width, src.orig_height), (src.stored_width, src.stored_height))
    return [list(box), entry[1]]


def size_rescaled_box(src: DRSample, j: int) -> tuple[int, int, int, int]:
    """The wrong rule (rescale the size, not the far edges), to check that the data tells them apart."""
    box = src.param_aug[j][0]
    sizes = (src.orig_width, src.orig_height), (src.stored_width, src.stored_height)
    top, left, _, _ = expected_box(box, *sizes)
    _, _, height, width = expected_box((0, 0, box[2], box[3]), *sizes)
    return top, left, height, width


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["joined", "separate"])
def test_loader_pixels_equal_reference_on_source_images(tmp_path, layout):
    data = make_dataset(
        tmp_path / "src",
        num_shards=2,
        samples_per_shard=6,
        layout=layout,
        seed=11,
        formats=("JPEG", "PNG", "WEBP"),
        resized_fraction=0.5 if layout == "separate" else 0.0,
        resize_to=48,
        null_aug_fraction=0.1,
    )
    report = convert(
        data.dr_shards,
        tmp_path / "store",
        layout=layout,
        image_shards=data.image_shards or None,
        workers=1,
        executor="inline",
        progress=False,
    )
    store = Store(tmp_path / "store")
    assert report.samples_written == len(store) == len(data.samples)
    by_uid = data.by_uid()
    formats = [Image.open(io.BytesIO(by_uid[store.uid(i)].stored_image)).format for i in range(len(store))]
    assert "WEBP" in formats, "the generated set must exercise transcoding"
    for i, fmt in enumerate(formats):
        assert bool(store.flags(i) & FLAG_IMAGE_TRANSCODED) == (fmt == "WEBP"), fmt

    loader = FastReinforcedLoader(tmp_path / "store", 5, image_size=32, image_dtype="uint8", num_threads=2, seed=3)
    J = store.dims["J"]
    unseen = {(i, j) for i in range(len(store)) for j in range(J)}
    for epoch in range(MAX_EPOCHS):
        loader.set_epoch(epoch)
        for batch in loader:
            for r in range(len(batch)):
                i, j = int(batch.index[r]), int(batch.aug_index[r])
                if (i, j) not in unseen:
                    continue
                unseen.discard((i, j))
                src = by_uid[store.uid(i)]
                ref = reference_replay(src.stored_image, source_entry(src, j), 32, TRAINING_INTERPOLATION)
                got = batch.images[r].permute(1, 2, 0).numpy()
                assert np.array_equal(got, ref), (src.uid, src.original_format, src.resized, j)
        if not unseen:
            break
    assert not unseen, f"{len(unseen)} (sample, augmentation) pairs never delivered in {MAX_EPOCHS} epochs"
    assert loader.skipped == []

    # What the data exercises: RandAugment ops, null entries and, where images were resized, boxes
    # whose edge-rescaled size differs from the rounded size.
    entries = [(s, j) for s in data.samples for j in range(J)]
    assert any(s.param_aug[j] is None for s, j in entries)
    assert any(s.param_aug[j] is not None and s.param_aug[j][1] for s, j in entries)
    if layout == "separate":
        assert any(
            s.resized and s.param_aug[j] is not None and tuple(source_entry(s, j)[0]) != size_rescaled_box(s, j)
            for s, j in entries
        )
