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
from mobileclip_fastload import FastReinforcedLoader, Store
from mobileclip_fastload.openclip_compat import (
    LoaderEpoch,
    dr_data_info,
    loader_options_from_transform,
    open_clip_dr_loader,
    open_clip_train_data,
)
from mobileclip_fastload.testing.synthetic_store import make_store
from open_clip_train.data import DataInfo
from torchvision.transforms import InterpolationMode

N, J, S, K, D = 12, 3, 2, 2, 4
BATCH = 4


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("openclip") / "store", n=N, J=J, S=S, K=K, D=D, seed=3)


def apple_style_epoch(data, epoch, store, num_samples=N):
    """One epoch as Apple's patched train_one_epoch consumes it; returns [(sample, aug, syn)]."""
    data["train"].set_epoch(epoch)
    dataloader = data["train"].dataloader
    num_batches_per_epoch = dataloader.num_batches // 1  # accum_freq 1
    assert dataloader.num_samples == num_samples
    assert math.ceil(math.log(dataloader.num_samples + 1, 10)) == len(str(num_samples))  # its sample_digits
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
    [
        (dict(image_dtype="uint8"), "image_dtype='float32'"),
        (dict(embedding_output_dtype="float16"), "embedding_output_dtype='float32'"),
    ],
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
        "image_size": 256,
        "interpolation": "bicubic",
        "mean": (0.0,) * 3,
        "std": (1.0,) * 3,
    }
    loader = open_clip_dr_loader(store_path, BATCH, tf, num_threads=1)
    assert (loader.image_dtype, loader.embedding_output_dtype) == ("float32", "float32")
    assert next(iter(loader)).images.shape == (BATCH, 3, 256, 256)

    custom = T.Compose(
        [
            T.RandomResizedCrop(40, interpolation=InterpolationMode.BILINEAR),
            T.ToTensor(),
            T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3)),
        ]
    )
    assert loader_options_from_transform(custom) == {
        "image_size": 40,
        "interpolation": "bilinear",
        "mean": (0.5, 0.4, 0.3),
        "std": (0.2, 0.25, 0.3),
    }
    with pytest.raises(ValueError, match="no RandomResizedCrop"):
        loader_options_from_transform(T.Compose([T.Normalize((0.0,) * 3, (1.0,) * 3)]))
    with pytest.raises(ValueError, match="square"):
        loader_options_from_transform(T.Compose([T.RandomResizedCrop((32, 48)), T.Normalize((0.0,) * 3, (1.0,) * 3)]))


# ---------------------------------------------------------------- --train-num-samples, --dataset-resampled
def _open_clip_args(store_path, *flags):
    """OpenCLIP's own parsed arguments, with the rank and world size its main() adds."""
    from open_clip_train.params import parse_args

    args = parse_args(
        ["--train-data", str(store_path), "--batch-size", str(BATCH), "--workers", "1", "--seed", "11", *flags]
    )
    args.rank, args.world_size = 0, 1
    return args


def _stream(loader, epochs):
    """(index, aug, syn) of every batch of the loader's own epochs 0..epochs-1, in order."""
    out = []
    for e in range(epochs):
        loader.set_epoch(e)
        out += [list(zip(b.index.tolist(), b.aug_index.tolist(), b.syn_index.tolist())) for b in loader]
    return out


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize(
    ("num_samples", "batch_size", "world_size", "workers"),
    [(6, 4, 1, 1), (12, 4, 1, 1), (13, 4, 1, 1), (1000, 7, 3, 4), (5, 8, 2, 3), (65_536_000, 256, 256, 24)],
)
def test_epoch_size_is_openclips_own_for_train_num_samples(num_samples, batch_size, world_size, workers):
    """The numbers OpenCLIP's webdataset pipeline sets (what its LR schedule counts), built but never read.
    (Resampled: the same arithmetic, without the check that there are enough shards for the workers.)"""
    from types import SimpleNamespace

    from mobileclip_fastload.openclip_compat import open_clip_epoch_size
    from open_clip_train.data import get_wds_dataset

    args = SimpleNamespace(
        train_data="/nonexistent/shard-{0000..0999}.tar",
        train_num_samples=num_samples,
        dataset_resampled=True,
        train_data_upsampling_factors=None,
        seed=0,
        batch_size=batch_size,
        world_size=world_size,
        workers=workers,
    )
    theirs = get_wds_dataset(args, preprocess_img=None, is_train=True, tokenizer=None).dataloader
    assert open_clip_epoch_size(num_samples, batch_size, world_size, workers) == (
        theirs.num_batches,
        theirs.num_samples,
    )


def test_train_num_samples_epochs_run_on_through_the_loaders_passes_and_resume_exactly(store_path):
    store = Store(store_path)
    # 6 samples per epoch at batch 4: 2 batches, 8 samples; the store's pass is 3 batches.
    data = {"train": open_clip_train_data(_open_clip_args(store_path, "--train-num-samples", "6"), image_size=16)}
    dataloader = data["train"].dataloader
    assert (dataloader.num_batches, dataloader.num_samples) == (2, 8)
    epochs = [apple_style_epoch(data, e, store, num_samples=8) for e in range(3)]
    # Three OpenCLIP epochs of 2 batches are the loader's passes 0 and 1 (3 batches each), in order.
    plain = FastReinforcedLoader(store_path, BATCH, image_size=16, num_threads=1, seed=11, drop_last=True)
    assert [r for e in epochs for r in e] == [r for b in _stream(plain, 2) for r in b]
    # A run resumed at epoch 2 (it starts inside the loader's second pass) gets that epoch again.
    resumed = {
        "train": open_clip_train_data(
            _open_clip_args(store_path, "--train-num-samples", "6"), image_size=16, num_threads=2
        )
    }
    assert apple_style_epoch(resumed, 2, store, num_samples=8) == epochs[2]
    assert apple_style_epoch(resumed, 1, store, num_samples=8) == epochs[1]


def test_train_num_samples_larger_than_the_store_spans_passes(store_path):
    store = Store(store_path)
    info = dr_data_info(
        open_clip_dr_loader(store_path, BATCH, image_size=16, num_threads=1, seed=11),
        train_num_samples=2 * N + 1,
        workers=2,
    )
    assert (info.dataloader.num_batches, info.dataloader.num_samples) == (8, 32)  # ceil(25/4)=7 -> 8 (2 workers)
    epoch = apple_style_epoch({"train": info}, 0, store, num_samples=32)
    seen = [n for n, _, _ in epoch]
    assert len(seen) == 32 and all(seen.count(n) in (2, 3) for n in range(N))  # 2 whole passes + 2 batches


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        (["--dataset-resampled"], "--dataset-resampled"),
        (["--dataset-resampled", "--train-data-upsampling-factors", "1"], "--dataset-resampled"),
    ],
)
def test_flags_that_cannot_be_honoured_are_refused_naming_the_flag(store_path, flags, flag):
    with pytest.raises(ValueError, match=flag):
        open_clip_train_data(_open_clip_args(store_path, "--train-num-samples", "6", *flags), image_size=16)
    with pytest.raises(ValueError, match="--dataset-resampled"):
        dr_data_info(open_clip_dr_loader(store_path, BATCH, image_size=16, num_threads=1), dataset_resampled=True)


def test_upsampling_factors_alone_are_refused_naming_the_flag(store_path):
    args = _open_clip_args(store_path)
    args.train_data_upsampling_factors = "1"  # OpenCLIP asserts it needs --dataset-resampled; refused either way
    with pytest.raises(ValueError, match="--train-data-upsampling-factors"):
        open_clip_train_data(args, image_size=16)


def test_without_train_num_samples_an_epoch_is_one_pass(store_path):
    data = {"train": open_clip_train_data(_open_clip_args(store_path), image_size=16)}
    assert isinstance(data["train"].dataloader, FastReinforcedLoader)
    assert sorted(n for n, _, _ in apple_style_epoch(data, 0, Store(store_path))) == list(range(N))


def _apple_args(store_path, *flags):
    """Apple's patch adds its DR flags to OpenCLIP's parser; these are the ones the data path reads."""
    args = _open_clip_args(store_path)
    args.dataset_reinforcement_mix_synthetic, args.dataset_reinforcement_mix_synthetic_ratio = False, 0.0
    args.dataset_reinforcement_sample_sequential, args.dataset_reinforcement_filter_image_size = False, None
    for name, value in flags:
        setattr(args, name, value)
    return args


def test_apples_mix_synthetic_flag_sets_the_loaders_mix_mode(store_path):
    args = _apple_args(
        store_path, ("dataset_reinforcement_mix_synthetic", True), ("dataset_reinforcement_mix_synthetic_ratio", 1.0)
    )
    batch = next(iter(open_clip_train_data(args, image_size=16).dataloader))
    assert bool(batch.text_is_syn.all())  # ratio 1.0: every caption synthetic
    plain = next(iter(open_clip_train_data(_apple_args(store_path), image_size=16).dataloader))
    assert not bool(plain.text_is_syn.any())


@pytest.mark.parametrize(
    ("name", "value", "flag"),
    [
        ("dataset_reinforcement_sample_sequential", True, "--dataset-reinforcement-sample-sequential"),
        ("dataset_reinforcement_filter_image_size", 64, "--dataset-reinforcement-filter-image-size"),
    ],
)
def test_apples_dr_flags_the_loader_cannot_honour_are_refused(store_path, name, value, flag):
    with pytest.raises(ValueError, match=flag):
        open_clip_train_data(_apple_args(store_path, (name, value)), image_size=16)


def test_apples_syn_text_key_regex_picks_the_loaders_caption_sets(tmp_path):
    """``--dataset-reinforcement-syn-text-key-regex`` on a store with two caption sets (converted
    from DFNDR-style shards): the synthetic caption comes only from the sets the regex picks, as
    Apple's loader picks syn.json keys (``re.match``), and its row is that caption's."""
    from mobileclip_fastload.convert import convert
    from mobileclip_fastload.testing.datacompdr import make_dataset

    ds = make_dataset(tmp_path / "src", num_shards=1, samples_per_shard=8, seed=31, syn_tags=["dfn", "coca"])
    path = tmp_path / "store"
    convert(ds.dr_shards, path, executor="inline", progress=False)
    store = Store(path)
    assert store.caption_sets == [("syn_text_coca", 3), ("syn_text_dfn", 3)]

    def sets_drawn(regex: str) -> set[int]:
        args = _apple_args(path, ("dataset_reinforcement_syn_text_key_regex", regex))
        loader = open_clip_train_data(args, image_size=16).dataloader
        drawn = set()
        for epoch in range(3):
            loader.set_epoch(epoch)
            for batch in loader:
                for r in range(len(batch)):
                    n, s, c = int(batch.index[r]), int(batch.syn_index[r]), int(batch.caption_set[r])
                    assert 3 * c <= s < 3 * (c + 1)  # the caption is one of its set's
                    assert np.array_equal(batch[5][r].numpy(), store.text_emb(n)[1 + s].astype(np.float32))
                    drawn.add(c)
        return drawn

    assert sets_drawn(r"^syn_text.*$") == {0, 1}  # Apple's default: every set
    assert sets_drawn("syn_text_d") == {1}  # anchored at the start of the name only
    with pytest.raises(ValueError, match="dfn"):  # found inside the names (re.search) but starts none
        open_clip_train_data(_apple_args(path, ("dataset_reinforcement_syn_text_key_regex", "dfn")), image_size=16)
