"""FastReinforcedLoader in OpenCLIP's training loop through `openclip_compat`.

`apple_style_epoch` does with ``data["train"]`` what Apple's patched
``open_clip_train.train.train_one_epoch`` does (set_epoch, num_batches,
num_samples, batch[:2], batch[4], batch[2], batch[3], batch[5]) and records what
was delivered; the tests check epochs, samples, rows and resumption.
"""

import math

import numpy as np
import pytest
import torch
from open_clip_train.data import DataInfo
from torchvision.transforms import InterpolationMode

from mobileclip_fastload import FastReinforcedLoader, Store
from mobileclip_fastload.openclip_compat import (
    LoaderEpoch,
    dr_data_info,
    loader_options_from_transform,
    open_clip_dr_loader,
)
from mobileclip_fastload.testing.synthetic_store import make_store

N, J, S, K, D = 12, 3, 2, 2, 4
BATCH = 4


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("openclip") / "store", n=N, J=J, S=S, K=K, D=D, seed=3)


def apple_style_epoch(data, epoch, store):
    """One epoch as Apple's patched train_one_epoch consumes it; returns [(sample, aug, syn)]."""
    data["train"].set_epoch(epoch)
    dataloader = data["train"].dataloader
    num_batches_per_epoch = dataloader.num_batches // 1  # accum_freq 1
    assert math.ceil(math.log(dataloader.num_samples + 1, 10)) == len(str(N))  # its sample_digits
    delivered = []
    for i, batch in enumerate(dataloader):  # noqa: B007 -- i is the count of batches after the loop
        images, texts = batch[:2]
        images = images.to(device="cpu", dtype=torch.float32)
        syn_texts = batch[4]
        texts = torch.cat([texts, syn_texts[:, : texts.shape[-1]]], dim=0)
        dist_image, dist_text, dist_syn = batch[2], batch[3], batch[5]
        b = dataloader.batch_size
        assert images.dtype == torch.float32 and images.shape == (b, 3, 16, 16)
        assert texts.shape == (2 * b, 77)
        assert all(t.dtype == torch.float32 and t.shape == (b, K * D) for t in (dist_image, dist_text, dist_syn))
        for r in range(b):
            # What the loop computes on must be the store's rows for the sample it was given
            # (float32 rows: exactly the stored float16 values).
            n, j, s = int(batch.index[r]), int(batch.aug_index[r]), int(batch.syn_index[r])
            assert np.array_equal(dist_image[r].numpy(), store.image_emb(n, j).astype(np.float32))
            assert np.array_equal(dist_text[r].numpy(), store.text_emb(n)[0].astype(np.float32))
            assert np.array_equal(dist_syn[r].numpy(), store.text_emb(n)[1 + s].astype(np.float32))
            delivered.append((n, j, s))
    assert i + 1 == num_batches_per_epoch
    return delivered


def _data(store_path, batch_size=BATCH, **kw):
    options = dict(image_size=16, num_threads=2, seed=11)
    options.update(kw)
    return {"train": dr_data_info(open_clip_dr_loader(store_path, batch_size, **options))}


def test_openclip_epoch_loop_sees_every_sample_once_per_epoch_in_a_new_order(store_path):
    store = Store(store_path)
    data = _data(store_path)
    assert data["train"].dataloader.num_batches == N // BATCH and data["train"].dataloader.num_samples == N
    epochs = [apple_style_epoch(data, e, store) for e in range(3)]
    orders = [[n for n, _, _ in ep] for ep in epochs]
    for order in orders:
        assert sorted(order) == list(range(N))
    assert len({tuple(o) for o in orders}) == 3, "each epoch must be a different permutation"
    assert data["train"].shared_epoch.get_value() == 3  # the loader stands after epoch 2

    # A resumed run (OpenCLIP restarts at the checkpoint's epoch) gets exactly that epoch again,
    # augmentations and captions included, from a fresh loader.
    resumed = _data(store_path, num_threads=1)
    assert apple_style_epoch(resumed, 2, store) == epochs[2]
    assert apple_style_epoch(resumed, 1, store) == epochs[1]


def test_the_ranks_of_a_ddp_run_split_each_epoch(store_path):
    store = Store(store_path)
    ranks = [_data(store_path, 3, rank=r, world_size=2, num_threads=1) for r in range(2)]  # 2 x 2 batches of 3
    for e in (0, 1):
        parts = [[n for n, _, _ in apple_style_epoch(data, e, store)] for data in ranks]
        assert len(parts[0]) == len(parts[1]) and sorted(parts[0] + parts[1]) == list(range(N))


def test_openclips_own_datainfo_reaches_the_loader_through_loader_epoch(store_path):
    loader = open_clip_dr_loader(store_path, BATCH, image_size=16, num_threads=1, seed=11)
    info = DataInfo(dataloader=loader, shared_epoch=LoaderEpoch(loader))
    info.set_epoch(5)
    first = next(iter(info.dataloader))
    assert first.epoch == 5 and loader.epoch == 5
    reference = _data(store_path)["train"]
    reference.set_epoch(5)
    assert torch.equal(next(iter(reference.dataloader)).index, first.index)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [(dict(output="uint8"), "output='float32'"), (dict(embedding_dtype="float16"), "embedding_dtype='float32'")],
)
def test_outputs_the_loop_would_misread_are_refused(store_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        dr_data_info(FastReinforcedLoader(store_path, BATCH, image_size=16, num_threads=1, **kwargs))


def test_the_loader_takes_size_interpolation_and_normalisation_from_openclips_training_transform(store_path):
    import open_clip
    from torchvision import transforms as T

    # open_clip's training RandomResizedCrop is bicubic, as Apple's replay; mean/std are the model's.
    tf = open_clip.image_transform(256, is_train=True, mean=(0.0,) * 3, std=(1.0,) * 3)
    assert loader_options_from_transform(tf) == {
        "image_size": 256, "interpolation": "bicubic", "mean": (0.0,) * 3, "std": (1.0,) * 3}
    loader = open_clip_dr_loader(store_path, BATCH, tf, num_threads=1)
    assert (loader.output, loader.embedding_dtype) == ("float32", "float32")
    assert next(iter(loader)).images.shape == (BATCH, 3, 256, 256)

    custom = T.Compose([T.RandomResizedCrop(40, interpolation=InterpolationMode.BILINEAR), T.ToTensor(),
                        T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))])
    assert loader_options_from_transform(custom) == {
        "image_size": 40, "interpolation": "bilinear", "mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3)}
    with pytest.raises(ValueError, match="no RandomResizedCrop"):
        loader_options_from_transform(T.Compose([T.Normalize((0.0,) * 3, (1.0,) * 3)]))
    with pytest.raises(ValueError, match="square"):
        loader_options_from_transform(T.Compose([T.RandomResizedCrop((32, 48)), T.Normalize((0.0,) * 3, (1.0,) * 3)]))
