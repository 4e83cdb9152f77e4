"""The fast training step computes the plain step's numbers.

Plain: NCHW, eager, batches copied and normalised by ``_prepare``. Fast: image tower in
channels_last, batches staged by ``DevicePrefetcher``, every block compiled on its own
(``compile_regions``; the tests use the ``aot_eager`` backend, which traces each region with
dynamo and runs it through AOT autograd, so that the wrapping is what is tested and not
inductor's CPU code generation, which takes minutes on a small machine).

channels_last backward on the CPU runs with oneDNN disabled: oneDNN's strided 1x1
convolution backward with an NHWC input of fewer than 16 channels writes past its workspace
(oneDNN issue 6035; with torch 2.15 here ``Conv2d(3, 64, 1, stride=2)`` on a 2x3x256x256
channels_last input aborts with ``double free or corruption`` in backward, which is what
MCi's stem does; the small sizes of these tests do not crash but may be silently wrong).
The fast path therefore defaults to channels_last on CUDA only.

Tests marked ``cuda`` (pinned loader memory, no host synchronisation inside the step,
side-stream copies) run only where a GPU is present.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math

import pytest
import torch
from mobileclip_fastload_train.data import as_batch, random_reinforced_source
from mobileclip_fastload_train.loss import ReinforcedClipLoss
from mobileclip_fastload_train.models import create_model
from mobileclip_fastload_train.prefetch import DevicePrefetcher
from mobileclip_fastload_train.step import FastPath, compile_regions, prepare_model, set_grad_checkpointing
from mobileclip_fastload_train.train import (
    TrainConfig,
    _parse,
    _prepare,
    _train_step,
    default_loader_image_dtype,
    train,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")


def cuda(test):
    """Runs only where a GPU is present; ``benches/gpu_check.py`` selects these with ``-m cuda``."""
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")(test))


# Tolerances, against a float64 run of the plain step (both float32 steps must meet them).
# channels_last and compiled regions only change the summation order; a layout mistake gives
# O(1) errors. Per parameter: the error norm is within GRAD_RTOL of the exact gradient's norm,
# or GRAD_ATOL absolute for gradients that are zero in exact arithmetic (biases ahead of a
# batch norm: their float32 values are rounding noise). Measured worst cases (tiny-S0/S1):
# 1.2e-3 relative (MCi's stem 1x1 depthwise conv, a gradient made of heavy cancellation) and
# 2.7e-7 absolute; the whole gradient vector is within 3e-5.
GRAD_RTOL, GRAD_ATOL, TOTAL_RTOL, LOSS_RTOL = 5e-3, 1e-6, 1e-4, 1e-5


def _model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return create_model(name, image_size=32, text_width=32, embed_dim=32)


def _batch(seed: int = 4):
    source = random_reinforced_source(8, batch_size=8, image_size=32, seed=seed)
    return as_batch(next(iter(source)))


def _cfg(**kw):
    base = dict(steps=4, warmup=1, precision="fp32", progress=False, log_every=1, num_teachers=2)
    base.update(kw)
    return TrainConfig(**base)


def _loss_and_grads(model, batch, memory_format=torch.contiguous_format, via_prefetcher=False):
    cfg = _cfg()
    loss_fn = ReinforcedClipLoss(lam=0.5, num_teachers=2)

    def stage(b):
        return [_prepare(b, model, cfg, CPU, torch.Generator(), memory_format)]

    prepared = DevicePrefetcher(lambda: batch, stage, CPU).next(more=False) if via_prefetcher else stage(batch)
    out = _train_step(model, loss_fn, prepared, contextlib.nullcontext())
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out["loss"], grads, prepared[0].images


def _assert_close_to_exact(loss, grads, exact_loss, exact_grads, what):
    assert abs(loss.double() - exact_loss) <= LOSS_RTOL * abs(exact_loss), what
    assert grads.keys() == exact_grads.keys() and len(grads) > 20
    for n, exact in exact_grads.items():
        err = (grads[n].double() - exact).norm()
        assert err <= GRAD_RTOL * exact.norm() or err <= GRAD_ATOL, (
            f"{what} {n}: error {err:.3g}, norm {exact.norm():.3g}"
        )
    flat = lambda g: torch.cat([g[n].double().flatten() for n in exact_grads])  # noqa: E731
    assert (flat(grads) - flat(exact_grads)).norm() <= TOTAL_RTOL * flat(exact_grads).norm(), what


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-S0", "tiny-S1"])
def test_fast_step_gives_the_plain_step_loss_and_gradients(name):
    batch = _batch()
    # Exact reference: the plain step in float64 on the same (float32-normalised) pixels.
    batch64 = dataclasses.replace(
        batch,
        images=(batch.images.float() / 255).double(),
        image_emb=batch.image_emb.double(),
        text_emb=batch.text_emb.double(),
        syn_text_emb=batch.syn_text_emb.double(),
    )
    exact_loss, exact_grads, _ = _loss_and_grads(_model(name).double(), batch64)
    plain_loss, plain_grads, plain_images = _loss_and_grads(_model(name), batch)

    fast_model = _model(name)
    prepare_model(fast_model, CPU, FastPath(channels_last=True, compile=True, compile_backend="aot_eager"))
    with torch.backends.mkldnn.flags(enabled=False):  # oneDNN issue 6035, see the module docstring
        fast_loss, fast_grads, fast_images = _loss_and_grads(
            fast_model, batch, torch.channels_last, via_prefetcher=True
        )

    assert fast_images.is_contiguous(memory_format=torch.channels_last)
    assert fast_model.visual.trunk.stem[0].conv_kxk[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast_images, plain_images, rtol=0, atol=0)  # the same normalisation
    _assert_close_to_exact(plain_loss, plain_grads, exact_loss, exact_grads, "plain")
    _assert_close_to_exact(fast_loss, fast_grads, exact_loss, exact_grads, "fast")


def test_regions_are_the_blocks_and_state_dict_keys_do_not_change():
    model = _model("tiny-S0")
    keys = list(model.state_dict())
    regions = compile_regions(model, backend="aot_eager")
    assert list(model.state_dict()) == keys
    assert "visual.trunk.stem" in regions and "visual.trunk.stages.3.blocks.0" in regions
    assert [r for r in regions if r.startswith("text.")] == [
        "text.transformer.0",
        "text.transformer.1",
        "text.transformer.2",
    ]
    tiny_s1 = _model("tiny-S1")
    assert "text.transformer.resblocks.0" in compile_regions(tiny_s1, backend="aot_eager")


def test_grad_checkpointing_gives_the_same_gradients():
    batch = _batch(5)
    plain_loss, plain_grads, _ = _loss_and_grads(_model("tiny-S0"), batch)
    model = _model("tiny-S0")
    assert set_grad_checkpointing(model) == ["visual.trunk", "text"]
    assert model.text.grad_checkpointing and all(s.grad_checkpointing for s in model.visual.trunk.stages)
    loss, grads, _ = _loss_and_grads(model, batch)
    torch.testing.assert_close(loss, plain_loss, rtol=0, atol=0)
    for n in plain_grads:
        torch.testing.assert_close(grads[n], plain_grads[n], rtol=0, atol=0, msg=lambda m, n=n: f"{n}: {m}")


@pytest.mark.slow
def test_s0_image_tower_forward_in_channels_last_matches_nchw():
    torch.manual_seed(0)
    model = create_model("MobileCLIP-S0").visual.eval()
    images = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        nchw = model(images)
        model.to(memory_format=torch.channels_last)
        nhwc = model(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(nhwc, nchw, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_log_every_defers_read_back_without_changing_the_numbers(tmp_path):
    def run(log_every, out=None):
        source = random_reinforced_source(24, batch_size=8, image_size=32, num_augs=2, num_syn=2, seed=6)
        return train(_cfg(steps=6, log_every=log_every, output_dir=out), _model("tiny-S0"), source)

    every = run(1)
    deferred = run(4, str(tmp_path / "run"))
    keys = ("loss", "clip_loss", "kd_loss", "grad_norm", "logit_scale", "lr", "epoch")
    assert [r["step"] for r in deferred.history] == list(range(1, 7))
    for a, b in zip(every.history, deferred.history):
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
        assert math.isfinite(b["samples_per_s"]) and b["data_s"] >= 0
    logged = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(logged) == 2  # steps 4 and 6 (the last)


@pytest.mark.slow
def test_compiled_training_reports_compile_time_and_keeps_the_losses(tmp_path):
    def run(**kw):
        source = random_reinforced_source(16, batch_size=8, image_size=32, seed=9)
        return train(_cfg(steps=3, log_every=3, **kw), _model("tiny-S0"), source)

    plain = run()
    compiled = run(compile=True, compile_backend="aot_eager", output_dir=str(tmp_path / "run"))
    assert compiled.history[0]["compile_s"] > 0 and "compile_s" not in compiled.history[1]
    logged = [json.loads(x)["step"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 3]
    for a, b in zip(plain.history, compiled.history):
        assert b["loss"] == pytest.approx(a["loss"], rel=LOSS_RTOL)


def test_prefetcher_reads_one_step_ahead_only_when_asked():
    produced = []

    def produce():
        produced.append(len(produced))
        return produced[-1]

    pf = DevicePrefetcher(produce, lambda x: x * 10, CPU)
    assert pf.next() == 0 and produced == [0, 1]
    assert pf.next(more=False) == 10 and produced == [0, 1]
    assert pf.next(more=False) == 20 and produced == [0, 1, 2]


# Calls that would block the host on CUDA: a tensor made from Python values (a pageable
# host-to-device copy) and every read-back of a tensor's value.
_SYNCING_CALLS = (
    ("torch", "tensor"),
    ("Tensor", "item"),
    ("Tensor", "tolist"),
    ("Tensor", "__bool__"),
    ("Tensor", "__float__"),
    ("Tensor", "__int__"),
    ("Tensor", "cpu"),
    ("Tensor", "numpy"),
)


def test_the_step_makes_no_host_synchronising_call(monkeypatch):
    """Counted on the CPU by instrumenting what would synchronise on CUDA: 4 more steps within
    one read-back window add none (the teacher scales were once a new tensor in every call)."""
    calls: list[str] = []

    def counted(owner, name):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        return wrapper

    for owner_name, name in _SYNCING_CALLS:
        owner = torch if owner_name == "torch" else torch.Tensor
        monkeypatch.setattr(owner, name, counted(owner, name))

    def count(steps: int) -> list[str]:
        source = random_reinforced_source(64, batch_size=8, image_size=32, seed=7)
        model = _model("tiny-S0")
        calls.clear()
        train(_cfg(steps=steps, log_every=100), model, source)
        return list(calls)

    count(1)  # what is made once per process (cached on the device) is made here
    four, eight = count(4), count(8)
    assert eight == four == ["tolist"], "the one read-back at the end is the only one"
    assert len(eight) - len(four) == 0, f"{len(eight) - len(four)} more syncing calls for 4 more steps: {eight}"


def test_loader_image_dtype_is_uint8_on_cuda_unless_asked():
    """Float32 would page-lock and copy 4x the bytes (~7 GB at the default prefetch) and normalise on the CPU."""
    assert _parse(["--fake-data", "8", "--output", "x"]).loader_image_dtype is None
    assert default_loader_image_dtype(torch.device("cuda", 0)) == "uint8"
    assert default_loader_image_dtype(CPU) == "float32"


# ---------------------------------------------------------------------------- CUDA only
@cuda
def test_cuda_step_has_no_host_synchronisation():
    """CUDA's sync debug mode counts synchronising calls: 4 more steps (one more read-back
    window) must add fewer than one per step (the read-back itself is one copy)."""
    import warnings

    from mobileclip_fastload_train.distributed import DistInfo

    def syncs(steps: int) -> int:
        source = random_reinforced_source(64, batch_size=8, image_size=32, seed=7)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                train(
                    _cfg(steps=steps, log_every=4, precision="bf16"),
                    _model("tiny-S0"),
                    source,
                    DistInfo(device=torch.device("cuda")),
                )
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    extra = syncs(8) - syncs(4)
    assert extra < 4, f"{extra} synchronisations for 4 more steps"


@contextlib.contextmanager
def _no_tf32():
    """cuDNN convolutions (and, where enabled, matmuls) run in TF32 by default: 10-bit mantissas,
    far outside this comparison's tolerances (emulated on the CPU, 91 of 193 gradients miss them,
    the stem first). The comparison is of the fast path's layout and kernels, in full float32."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=True, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


def test_the_cuda_comparison_runs_without_tf32():
    """Checked here (the settings exist without a GPU): inside, cuDNN and matmuls are full float32."""
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    with _no_tf32():
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


@cuda
def test_cuda_fast_step_matches_cpu_plain_step():
    with _no_tf32():
        _cuda_fast_step_matches_cpu_plain_step()


def _cuda_fast_step_matches_cpu_plain_step():
    batch = _batch(8)
    plain_loss, plain_grads, _ = _loss_and_grads(_model("tiny-S0"), batch)
    model = _model("tiny-S0")
    device = torch.device("cuda")
    prepare_model(model, device, FastPath.default_for(device))
    cfg = _cfg()
    stage = lambda b: [_prepare(b, model, cfg, device, torch.Generator(), torch.channels_last)]  # noqa: E731
    prepared = DevicePrefetcher(lambda: batch, stage, device).next(more=False)
    out = _train_step(model, ReinforcedClipLoss(lam=0.5, num_teachers=2), prepared, contextlib.nullcontext())
    torch.testing.assert_close(out["loss"].cpu(), plain_loss, rtol=1e-3, atol=1e-4)
    for n, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(
                p.grad.cpu(), plain_grads[n], rtol=1e-2, atol=1e-4, msg=lambda m, n=n: f"{n}: {m}"
            )


@cuda
def test_loader_pins_its_recycled_buffers_once_without_copying(tmp_path):
    """Every copied field is page-locked on its own (each starts on a page of its own), once per
    recycled buffer; close() waits for the copies, unpins, and later batches stay pageable."""
    from mobileclip_fastload import FastReinforcedLoader
    from mobileclip_fastload.testing.synthetic_store import make_store

    store = make_store(tmp_path / "store", n=48, J=3, S=2, K=2, D=8)  # 2 epochs x 6 batches
    loader = FastReinforcedLoader(
        store, 8, image_size=256, num_threads=1, prefetch=1, image_dtype="uint8", drop_last=True, pin_memory=True
    )
    pinned = loader._pinned
    fields = ("images", "text", "syn_text", "image_emb", "text_emb", "syn_text_emb")
    views = set()
    for _ in range(2):
        for b in loader:
            assert b.images.data_ptr() == b.memory.images_address  # a view of the Rust buffer, not a copy
            for f in fields:
                t = getattr(b, f)
                views.add((t.data_ptr(), t.untyped_storage().nbytes()))
                assert t.is_pinned() and t.data_ptr() in pinned._ranges, f
                on_gpu = t.to("cuda", non_blocking=True)
                torch.cuda.synchronize()
                assert torch.equal(on_gpu.cpu(), t)
    registered = {(addr, r[0]) for addr, r in pinned._ranges.items()}
    assert registered and registered <= views
    assert len(views) <= 6 * 6  # recycled: a handful of buffers, not one per batch (12 batches)
    loader.close()
    assert not pinned._ranges and not b.images.is_pinned()
    assert not next(iter(loader)).images.is_pinned()  # no registration left for later batches


@cuda
def test_a_dropped_batch_is_not_refilled_while_its_copy_runs(tmp_path):
    """Apple's loop through the OpenCLIP adapter: queue a non_blocking copy of batch[0], drop the
    batch, ask for the next one. The copies are queued behind a long GPU kernel, so they run
    well after the loader could have refilled the memory; they must still see their own pixels."""
    from mobileclip_fastload import FastReinforcedLoader
    from mobileclip_fastload.testing.synthetic_store import make_store

    store = make_store(tmp_path / "store", n=64, J=3, S=2, K=2, D=8)
    reference = [
        b.images.clone()
        for b in FastReinforcedLoader(store, 4, image_size=64, num_threads=2, shuffle=False, image_dtype="uint8")
    ]
    for via_to in (False, True):
        loader = FastReinforcedLoader(
            store, 4, image_size=64, num_threads=2, shuffle=False, image_dtype="uint8", pin_memory=True, prefetch=2
        )
        copies = []
        for batch in loader:
            torch.cuda._sleep(20_000_000)  # ~10 ms of GPU time ahead of the copy
            copies.append(
                batch.to("cuda", non_blocking=True).images if via_to else batch[0].to("cuda", non_blocking=True)
            )
            del batch
        torch.cuda.synchronize()
        for i, (got, want) in enumerate(zip(copies, reference)):
            assert torch.equal(got.cpu(), want), f"batch {i} (via to: {via_to}) was refilled during its copy"
        loader.close()
