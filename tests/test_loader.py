"""FastReinforcedLoader: exact pixels and rows, determinism, resume, rank
sharding, zero-copy buffers, bad images, argument checking."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from conftest import collect_batches
from mobileclip_fastload import FastReinforcedLoader, ImageDecodeError, Store
from mobileclip_fastload.reference import reference_replay
from mobileclip_fastload.testing.synthetic_store import make_store
from PIL import Image

N, J, S, K, D = 22, 4, 3, 2, 8


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("loader") / "store", n=N, J=J, S=S, K=K, D=D, seed=1)


@pytest.fixture(scope="module")
def bad_store_path(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("loader-bad") / "store", n=10, J=J, S=S, K=K, D=D, seed=2, corrupt=(3, 4))


def padded(tokens: np.ndarray) -> np.ndarray:
    out = np.zeros(77, dtype=np.int64)
    out[: len(tokens)] = tokens[:77]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_pixels_and_rows_match_the_reference(store_path, interpolation):
    store = Store(store_path)
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    loader = FastReinforcedLoader(
        store_path, 8, image_size=40, interpolation=interpolation, mean=mean, std=std, num_threads=2, seed=3
    )
    u8 = FastReinforcedLoader(
        store_path, 8, image_size=40, interpolation=interpolation, image_dtype="uint8", num_threads=2, seed=3
    )
    seen = 0
    for fb, ub in zip(loader, u8):
        assert fb.images.dtype == torch.float32 and ub.images.dtype == torch.uint8
        for r in range(len(fb)):
            i, j, s = int(fb.index[r]), int(fb.aug_index[r]), int(fb.syn_index[r])
            assert (i, j, s) == (int(ub.index[r]), int(ub.aug_index[r]), int(ub.syn_index[r]))
            ref = reference_replay(bytes(store.image(i)), store.aug(i)[j], 40, interpolation)
            assert np.array_equal(ub.images[r].permute(1, 2, 0).numpy(), ref), f"sample {i} aug {j}"
            ref_f = TF.normalize(TF.to_tensor(Image.fromarray(ref)), mean, std)
            assert torch.equal(fb.images[r], ref_f)
            assert np.array_equal(fb.text[r].numpy(), padded(store.caption_tokens(i)))
            assert np.array_equal(fb.syn_text[r].numpy(), padded(store.syn_tokens(i, s)))
            assert np.array_equal(fb.image_emb[r].numpy(), store.image_emb(i, j))
            assert np.array_equal(fb.text_emb[r].numpy(), store.text_emb(i)[0])
            assert np.array_equal(fb.syn_text_emb[r].numpy(), store.text_emb(i)[1 + s])
            seen += 1
    assert seen == N


def test_tuple_unpacking_and_float32_embeddings(store_path):
    loader = FastReinforcedLoader(store_path, 5, image_size=16, embedding_output_dtype="float32", num_threads=1)
    batch = next(iter(loader))
    image, text, image_emb, _text_emb, syn_text, _syn_text_emb = batch
    assert image.shape == (5, 3, 16, 16) and text.shape == (5, 77) and syn_text.dtype == torch.int64
    assert image_emb.shape == (5, K * D) and image_emb.dtype == torch.float32
    store = Store(store_path)
    i, j = int(batch.index[0]), int(batch.aug_index[0])
    assert np.array_equal(image_emb[0].numpy(), store.image_emb(i, j).astype(np.float32))


def test_same_batches_for_any_thread_count(store_path):
    runs = [
        collect_batches(FastReinforcedLoader(store_path, 4, image_size=24, num_threads=t, prefetch=p, seed=5))
        for t, p in [(1, 1), (2, 2), (2, 7)]
    ]
    for other in runs[1:]:
        assert len(other) == len(runs[0])
        for a, b in zip(runs[0], other):
            for k in a:
                assert torch.equal(a[k], b[k]), k


def test_epochs_differ_and_cover_everything(store_path):
    loader = FastReinforcedLoader(store_path, 4, image_size=8, num_threads=2, seed=5)
    e0 = torch.cat([b["index"] for b in collect_batches(loader)])
    e1 = torch.cat([b["index"] for b in collect_batches(loader)])  # auto-advanced to epoch 1
    assert sorted(e0.tolist()) == list(range(N)) == sorted(e1.tolist())
    assert not torch.equal(e0, e1)
    loader.set_epoch(0)
    assert torch.equal(torch.cat([b["index"] for b in collect_batches(loader)]), e0)


def test_unshuffled_order_is_identity(store_path):
    loader = FastReinforcedLoader(store_path, 5, image_size=8, num_threads=2, shuffle=False)
    assert torch.cat([b["index"] for b in collect_batches(loader)]).tolist() == list(range(N))


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [0, 1, 3])
def test_resume_mid_epoch_gives_the_remaining_batches(store_path, stop_after):
    kwargs = dict(image_size=16, num_threads=2, seed=9)
    full = FastReinforcedLoader(store_path, 4, **kwargs)
    full.set_epoch(2)
    expected = collect_batches(full)
    first = FastReinforcedLoader(store_path, 4, **kwargs)
    first.set_epoch(2)
    it = iter(first)
    for _ in range(stop_after):
        next(it)
    state = first.state_dict()
    del it
    resumed = FastReinforcedLoader(store_path, 4, **{**kwargs, "num_threads": 1})
    resumed.load_state_dict(state)
    rest = collect_batches(resumed)
    assert len(rest) == len(expected) - stop_after
    for a, b in zip(expected[stop_after:], rest):
        for k in a:
            assert torch.equal(a[k], b[k]), k


def test_state_dict_refuses_a_different_configuration(store_path):
    a = FastReinforcedLoader(store_path, 4, image_size=8, num_threads=1, seed=1)
    b = FastReinforcedLoader(store_path, 4, image_size=8, num_threads=1, seed=2)
    with pytest.raises(ValueError, match="seed"):
        b.load_state_dict(a.state_dict())


@pytest.mark.slow
@pytest.mark.parametrize(("world_size", "drop_last"), [(2, False), (3, False), (3, True), (4, False)])
def test_rank_shards(store_path, world_size, drop_last):
    shards = []
    for rank in range(world_size):
        loader = FastReinforcedLoader(
            store_path, 3, image_size=8, num_threads=1, seed=4, rank=rank, world_size=world_size, drop_last=drop_last
        )
        idx = [b["index"] for b in collect_batches(loader)]
        shards.append(torch.cat(idx).tolist() if idx else [])
        assert len(loader) == len(idx)
    lengths = {len(s) for s in shards}
    assert len(lengths) == 1, "rank shards must have equal length"
    union = set().union(*map(set, shards))
    if drop_last:
        assert sum(map(len, shards)) == len(union), "with drop_last the shards are disjoint"
    else:
        assert union == set(range(N)), "without drop_last every sample is seen"
        if N % world_size == 0:
            assert sum(map(len, shards)) == N


def test_mix_mode_swaps_text_for_a_synthetic_caption(store_path):
    store = Store(store_path)
    loader = FastReinforcedLoader(
        store_path, 11, image_size=8, num_threads=2, caption_mode="mix", mix_probability=0.5, seed=0
    )
    flags = []
    for b in loader:
        for r in range(len(b)):
            i, s = int(b.index[r]), int(b.syn_index[r])
            if b.text_is_syn[r]:
                assert np.array_equal(b.text[r].numpy(), padded(store.syn_tokens(i, s)))
                assert np.array_equal(b.text_emb[r].numpy(), store.text_emb(i)[1 + s])
            else:
                assert np.array_equal(b.text[r].numpy(), padded(store.caption_tokens(i)))
            flags.append(bool(b.text_is_syn[r]))
    assert any(flags) and not all(flags)
    always = FastReinforcedLoader(store_path, 11, image_size=8, num_threads=1, caption_mode="mix", mix_probability=1.0)
    assert all(bool(b.text_is_syn.all()) for b in always)


def test_tensors_view_loader_memory_and_are_not_overwritten_while_held(store_path):
    loader = FastReinforcedLoader(store_path, 4, image_size=16, image_dtype="uint8", num_threads=2, prefetch=2, seed=8)
    held, copies = [], []
    for b in loader:
        assert b.images.data_ptr() == b.memory.images_address, "images must be a view, not a copy"
        held.append(b)
        copies.append(b.images.clone())
    addresses = {b.images.data_ptr() for b in held}
    assert len(addresses) == len(held), "a buffer was reused while a tensor still referred to it"
    for b, c in zip(held, copies):
        assert torch.equal(b.images, c)


@pytest.mark.slow
def test_buffers_are_recycled_and_bounded(store_path):
    loader = FastReinforcedLoader(store_path, 2, image_size=16, num_threads=2, prefetch=3, seed=8)
    for _ in range(3):
        for b in loader:
            del b
        gc.collect()
    # prefetch window + one batch held by the consumer + one per worker in flight
    assert loader._core.buffers_allocated() <= 3 + 1 + 2


@pytest.mark.slow
def test_undecodable_images_are_replaced_deterministically(bad_store_path):
    runs = []
    for threads in (1, 2):
        loader = FastReinforcedLoader(bad_store_path, 4, image_size=16, num_threads=threads, seed=0)
        runs.append(torch.cat([b["index"] for b in collect_batches(loader)]).tolist())
        skipped = loader.skipped
        assert {s["uid"] for s in skipped} == {"sample-00003", "sample-00004"}
        assert {(s["index"], s["replacement"]) for s in skipped} >= {(4, 5)}
    assert runs[0] == runs[1]
    assert 3 not in runs[0] and 4 not in runs[0]
    assert len(runs[0]) == 10


def test_undecodable_image_raises_in_the_iterating_thread_when_asked(bad_store_path):
    loader = FastReinforcedLoader(bad_store_path, 10, image_size=16, num_threads=2, on_error="raise")
    with pytest.raises(ImageDecodeError, match=r"sample-0000[34]"):
        for _ in loader:
            pass


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=0),
        dict(image_size=0),
        dict(rank=2, world_size=2),
        dict(num_threads=0),
        dict(interpolation="lanczos"),
        dict(image_dtype="uint16"),
        dict(caption_mode="neither"),
        dict(mix_probability=1.5),
        dict(std=(1.0, 0.0, 1.0)),
    ],
)
def test_invalid_arguments_raise_value_error(store_path, kwargs):
    args = dict(batch_size=4, image_size=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=next(iter(kwargs))):  # the message names the setting
        FastReinforcedLoader(store_path, args.pop("batch_size"), **args)


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope: no DR store"):
        FastReinforcedLoader(tmp_path / "nope", 4)


def test_inexact_fast_mode_stays_close_to_exact(store_path):
    kwargs = dict(image_size=24, image_dtype="uint8", num_threads=2, seed=6)
    exact = collect_batches(FastReinforcedLoader(store_path, 8, **kwargs))
    fast = collect_batches(FastReinforcedLoader(store_path, 8, dct_scaling=1.0, **kwargs))
    assert any(not torch.equal(a["images"], b["images"]) for a, b in zip(exact, fast)), "fast mode never engaged"
    for a, b in zip(exact, fast):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["aug_index"], b["aug_index"])
        diff = (a["images"].float() - b["images"].float()) ** 2
        psnr = 10 * torch.log10(255.0**2 / diff.mean().clamp_min(1e-12))
        assert psnr > 20, float(psnr)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_bf16_and_int8_stores_are_decoded_to_the_stored_values(tmp_path, dtype):
    from mobileclip_fastload.store import bf16_bits_to_float32, dequantize_int8

    path = make_store(tmp_path / "store", n=9, J=J, S=S, K=K, D=D, seed=4, embedding_dtype=dtype)
    store = Store(path)

    def expected(i: int) -> tuple[np.ndarray, np.ndarray]:
        if dtype == "bfloat16":
            return bf16_bits_to_float32(store.image_embs(i)), bf16_bits_to_float32(store.text_emb(i))
        return (
            dequantize_int8(store.image_embs(i), store.image_emb_scales(i)),
            dequantize_int8(store.text_emb(i), store.text_emb_scales(i)),
        )

    for out in ("float32", "float16"):
        loader = FastReinforcedLoader(path, 4, image_size=8, embedding_output_dtype=out, num_threads=2, seed=2)
        for b in loader:
            for r in range(len(b)):
                i, j, s = int(b.index[r]), int(b.aug_index[r]), int(b.syn_index[r])
                img, txt = expected(i)
                cast = np.float32 if out == "float32" else np.float16
                assert np.array_equal(b.image_emb[r].numpy(), img[j].astype(cast))
                assert np.array_equal(b.text_emb[r].numpy(), txt[0].astype(cast))
                assert np.array_equal(b.syn_text_emb[r].numpy(), txt[1 + s].astype(cast))
