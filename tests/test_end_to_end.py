"""Source shards -> convert -> store -> loader: every delivered image equals
the Pillow + torchvision reference applied to the *source* image bytes with
the upstream `param_aug` entry (boxes rescaled where the image was resized).
Formats the loader's decoder cannot reproduce exactly (WebP here) are stored
as lossless PNGs of Pillow's pixels and flagged."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mobileclip_fastload import FastReinforcedLoader, Store
from mobileclip_fastload.convert import convert
from mobileclip_fastload.loader import TRAINING_INTERPOLATION
from mobileclip_fastload.reference import reference_replay
from mobileclip_fastload.store import FLAG_IMAGE_TRANSCODED
from mobileclip_fastload.testing.datacompdr import make_dataset


@pytest.mark.parametrize("layout", ["joined", "separate"])
def test_loader_pixels_equal_reference_on_source_images(tmp_path, layout):
    data = make_dataset(
        tmp_path / "src", num_shards=2, samples_per_shard=6, layout=layout, seed=11,
        formats=("JPEG", "PNG", "WEBP"), resized_fraction=0.5 if layout == "separate" else 0.0, resize_to=48,
    )
    report = convert(data.dr_shards, tmp_path / "store", layout=layout,
                     image_shards=data.image_shards or None, workers=1, executor="inline", progress=False)
    store = Store(tmp_path / "store")
    assert report.samples_written == len(store) > 0
    by_uid = data.by_uid()
    formats = [Image.open(io.BytesIO(by_uid[store.uid(i)].stored_image)).format for i in range(len(store))]
    assert "WEBP" in formats, "the generated set must exercise transcoding"
    for i, fmt in enumerate(formats):
        assert bool(store.flags(i) & FLAG_IMAGE_TRANSCODED) == (fmt == "WEBP"), fmt

    loader = FastReinforcedLoader(tmp_path / "store", 5, image_size=32, output="uint8", num_threads=2, seed=3)
    seen = 0
    for batch in loader:
        for r in range(len(batch)):
            i, j = int(batch.index[r]), int(batch.aug_index[r])
            src = by_uid[store.uid(i)]
            # The reference sees the source bytes and the stored (stored-pixel-space) box.
            ref = reference_replay(src.stored_image, store.aug(i)[j], 32, TRAINING_INTERPOLATION)
            assert np.array_equal(batch.images[r].permute(1, 2, 0).numpy(), ref), (src.uid, src.original_format, j)
            seen += 1
    assert seen == len(store)
    assert loader.skipped == []
