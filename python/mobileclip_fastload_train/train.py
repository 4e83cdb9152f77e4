"""The reinforced-training loop.

    python -m mobileclip_fastload_train.train --store /data/dr-store --model MobileCLIP-S0 \\
        --batch-size 256 --steps 30000 --output runs/s0
    torchrun --nproc_per_node 8 -m mobileclip_fastload_train.train --store ... (same arguments)

Per optimiser step: ``accum_steps`` micro-batches are read from the source,
student features for the images and both captions are computed (the real and
synthetic captions go through the text tower as one batch), and the
reinforced loss (CLIP + ensemble distillation, ``mobileclip_fastload_train.loss``) is
back-propagated. Gradient accumulation caches the other micro-batches'
features (open_clip's scheme), so the loss is the full-batch contrastive loss,
not a sum of small-batch ones. AdamW, warmup + cosine, clipping at 1.0,
bf16 autocast, DDP across processes. Checkpoints hold the loader's position,
so a killed run resumes with exactly the batches it would have seen.
Metrics go to ``<output>/metrics.jsonl`` (one JSON object per line).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from mobileclip_fastload_train.checkpoint import find_latest, load_checkpoint, save_checkpoint
from mobileclip_fastload_train.data import (
    TrainingBatch,
    as_batch,
    keyed_generator,
    open_store_loader,
    random_reinforced_source,
)
from mobileclip_fastload_train.distributed import DistInfo, all_gather_objects, cleanup, init_distributed
from mobileclip_fastload_train.loss import ReinforcedClipLoss, mix_captions, per_teacher_scales
from mobileclip_fastload_train.models import CLIPModel, create_model, list_models
from mobileclip_fastload_train.models.checkpoints import load_pretrained
from mobileclip_fastload_train.optim import build_optimizer, lr_at
from mobileclip_fastload_train.prefetch import DevicePrefetcher
from mobileclip_fastload_train.recipes import RECIPES, describe
from mobileclip_fastload_train.run_logging import WANDB_MODES, Loggers, open_loggers
from mobileclip_fastload_train.step import COMPILE_MODES, FastPath, image_memory_format, prepare_model

LOSS_CAPTIONS = ("both", "real", "mix")


@dataclass
class TrainConfig:
    steps: int = 30_000  # total optimiser steps of the run (defines the LR schedule)
    lr: float = 1e-3
    weight_decay: float = 0.2
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-6
    warmup: int = 1000
    grad_clip: float = 1.0  # 0 disables clipping
    precision: str = "bf16"  # "bf16" (autocast) or "fp32"
    accum_steps: int = 1
    lam: float = 1.0  # distillation weight lambda
    num_teachers: int = 2
    # One distillation logit scale per teacher (one value = all teachers); stored as K values.
    teacher_logit_scale: float | tuple[float, ...] = 100.0
    loss_captions: str = "both"  # both: real + synthetic terms; real: real only; mix: one caption, synthetic w.p. p
    mix_probability: float = 0.5
    seed: int = 0
    output_dir: str | None = None
    save_every: int = 0  # steps between checkpoints (0: only at the end)
    log_every: int = 1
    eval_every: int = 0  # steps between evaluations (eval_fn); with an eval_fn it also runs at the end
    tensorboard: bool = False  # scalars to <output_dir>/tensorboard (mobileclip_fastload_train.run_logging)
    wandb_project: str | None = None  # W&B run in this project (needs wandb), files under <output_dir>/wandb
    wandb_mode: str = "offline"
    resume: bool = True  # continue from <output_dir>/checkpoints/latest.pt when present
    stop_at: int | None = None  # end this invocation after this step (as if killed); the schedule still uses `steps`
    progress: bool = True
    # How the step runs (mobileclip_fastload_train.step); the numbers are the same either way.
    channels_last: bool | None = None  # image tower in channels_last; None: on CUDA only
    compile: bool = False  # regional torch.compile
    compile_mode: str = "default"
    compile_backend: str = "inductor"  # tests: "aot_eager"
    grad_checkpointing: bool = False

    def fast_path(self, device: torch.device) -> FastPath:
        return FastPath.default_for(
            device,
            channels_last=self.channels_last,
            compile=self.compile,
            compile_mode=self.compile_mode,
            compile_backend=self.compile_backend,
            grad_checkpointing=self.grad_checkpointing,
        )

    def __post_init__(self) -> None:
        if self.loss_captions not in LOSS_CAPTIONS:
            raise ValueError(f"loss_captions must be one of {LOSS_CAPTIONS}, got {self.loss_captions!r}")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be 'bf16' or 'fp32', got {self.precision!r}")
        if self.accum_steps < 1 or self.steps < 1:
            raise ValueError("steps and accum_steps must be >= 1")
        if self.compile and self.compile_mode == "reduce-overhead" and self.accum_steps > 1:
            # CUDA graphs overwrite a region's outputs on its next run: the cached features of
            # the accumulation pass would be overwritten before the loss reads them.
            raise ValueError("--compile-mode reduce-overhead (CUDA graphs) needs --accum-steps 1")
        self.teacher_logit_scale = per_teacher_scales(self.teacher_logit_scale, self.num_teachers)


@dataclass
class TrainResult:
    step: int
    history: list[dict[str, Any]] = field(default_factory=list)


class BatchStream:
    """Endless batches from an epoch-based source; advances epochs itself."""

    def __init__(self, source: Any, epoch: int) -> None:
        self.source, self.epoch = source, epoch
        self._it = None

    def next(self) -> Any:
        for _ in range(2):
            if self._it is None:
                self._it = iter(self.source)
            try:
                return next(self._it)
            except StopIteration:
                self._it = None
                self.epoch += 1
                self.source.set_epoch(self.epoch)
        raise RuntimeError("the batch source yielded no batch in a whole epoch (dataset smaller than one batch?)")


@dataclass
class _Prepared:
    images: torch.Tensor
    texts: torch.Tensor  # [B] or [2B] tokens (real then synthetic)
    has_syn: bool
    image_emb: torch.Tensor | None
    text_emb: torch.Tensor | None
    syn_text_emb: torch.Tensor | None


@functools.lru_cache(maxsize=16)
def _mean_std(
    device: torch.device, mean: tuple[float, ...], std: tuple[float, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    # Made once: a tensor built from a list per step would be a blocking (synchronising) copy.
    return (torch.tensor(mean, device=device).view(1, 3, 1, 1), torch.tensor(std, device=device).view(1, 3, 1, 1))


def _images_on_device(
    images: torch.Tensor, model: CLIPModel, device: torch.device, memory_format: torch.memory_format
) -> torch.Tensor:
    """Copy (asynchronously from pinned memory) and, for uint8, normalise on the device:
    ``(x / 255 - mean) / std`` as the loader's float32 output computes it."""
    images = images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
    if images.dtype == torch.uint8:
        pre = model.preprocess
        images = images.float().div_(255.0)
        if pre.mean != (0.0, 0.0, 0.0) or pre.std != (1.0, 1.0, 1.0):
            mean, std = _mean_std(device, tuple(pre.mean), tuple(pre.std))
            images = images.sub_(mean).div_(std)
    return images


def _prepare(
    batch: TrainingBatch,
    model: CLIPModel,
    cfg: TrainConfig,
    device: torch.device,
    mix_gen: torch.Generator,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> _Prepared:
    """One micro-batch on the device. Caption choices are made on the host (no device
    round trip); the copies are ``non_blocking`` and concatenation happens on the device,
    so pinned loader memory is copied as it is."""
    images = _images_on_device(batch.images, model, device, memory_format)
    text, text_emb = batch.text, batch.text_emb
    if cfg.loss_captions == "mix" and batch.text_is_syn is None:
        text, text_emb, _ = mix_captions(
            text, text_emb, batch.syn_text, batch.syn_text_emb, cfg.mix_probability, mix_gen
        )
    has_syn = cfg.loss_captions == "both"
    host_texts = [text, batch.syn_text] if has_syn else [text]
    context = model.preprocess.context_length
    # A model with a shorter context (small experiments) takes the stored 77-token rows
    # only if nothing but padding is cut (checked on the host copy: no device round trip).
    if text.shape[1] > context and any(bool((t[:, context:] != 0).any()) for t in host_texts):
        raise ValueError(f"captions are longer than the model's context of {context} tokens")

    def dev(t: torch.Tensor | None) -> torch.Tensor | None:
        return t.to(device, non_blocking=True) if t is not None else None

    texts = torch.cat([dev(t) for t in host_texts])[:, :context]
    return _Prepared(
        images, texts, has_syn, dev(batch.image_emb), dev(text_emb), dev(batch.syn_text_emb) if has_syn else None
    )


def _features(net: nn.Module, p: _Prepared, autocast: contextlib.AbstractContextManager):
    with autocast:
        img, txt, scale = net(p.images, p.texts)
    syn = None
    if p.has_syn:
        txt, syn = txt.split(p.images.shape[0])
    return img, txt, syn, scale


def _cat(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if any(t is None for t in parts) else torch.cat(parts)


def _detached(out) -> dict[str, torch.Tensor]:
    # Kept on the device: reading them back every step would synchronise the host with the GPU.
    return {"loss": out.loss.detach(), "clip_loss": out.clip.detach(), "kd_loss": out.kd.detach()}


def _train_step(net, loss_fn, prepared: list[_Prepared], autocast) -> dict[str, torch.Tensor]:
    """Forward + backward for one optimiser step (no optimiser update); losses as device tensors."""
    teacher = [_cat([getattr(p, k) for p in prepared]) for k in ("image_emb", "text_emb", "syn_text_emb")]
    if len(prepared) == 1:
        img, txt, syn, scale = _features(net, prepared[0], autocast)
        out = loss_fn(img, txt, scale, teacher[0], teacher[1], syn, teacher[2])
        out.loss.backward()
        return _detached(out)

    # Accumulation: features of every micro-batch without grad, then each micro-batch again with
    # grad against the cached rest; summing the micro-batch gradients gives the full-batch gradient.
    with torch.no_grad():
        cached = [_features(net, p, autocast)[:3] for p in prepared]
    totals: dict[str, torch.Tensor] = {}
    for m, p in enumerate(prepared):
        last = m == len(prepared) - 1
        sync = contextlib.nullcontext() if last or not hasattr(net, "no_sync") else net.no_sync()
        with sync:
            fresh = _features(net, p, autocast)
            img, txt, syn = (
                _cat([fresh[i] if j == m else cached[j][i] for j in range(len(prepared))]) for i in range(3)
            )
            # The logit scale enters every micro-batch's loss in full: let only one pass carry its
            # gradient, or it would be counted accum_steps times (open_clip's accumulation does that).
            scale = fresh[3] if last else fresh[3].detach()
            out = loss_fn(img, txt, scale, teacher[0], teacher[1], syn, teacher[2])
            out.loss.backward()
        for k, v in _detached(out).items():
            totals[k] = totals[k] + v / len(prepared) if k in totals else v / len(prepared)
    return totals


def _log_line(path: Path | None, record: dict[str, Any]) -> None:
    if path is not None:
        with path.open("a") as f:
            f.write(json.dumps(record) + "\n")


@dataclass
class _StepBatches:
    """One optimiser step's micro-batches on the device, and where the source stood after them."""

    step: int
    prepared: list[_Prepared]
    loader_state: dict[str, Any]
    epoch: int


def _grad_norm(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Total gradient norm as a device tensor (clipping to ``max_norm`` if > 0); no host sync."""
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])


def train(
    cfg: TrainConfig,
    model: CLIPModel,
    source: Any,
    info: DistInfo | None = None,
    eval_fn: Callable[[CLIPModel], dict[str, float]] | None = None,
) -> TrainResult:
    """Train ``model`` on batches from ``source`` (the ``FastReinforcedLoader`` contract, see
    ``mobileclip_fastload_train.data``).

    The step never waits for the device: losses, the gradient norm and the logit scale stay
    device tensors and are read back (one synchronisation) when a record is written, every
    ``cfg.log_every`` steps and before checkpoints and evaluations. ``samples_per_s`` and
    ``step_s`` of a record are the averages over the steps since the previous read-back;
    ``data_s`` is each step's own wait for its batches (plus queueing their copy).

    ``eval_fn`` runs on every rank (``mobileclip_fastload_train.validation`` shards its work over them);
    rank 0 records what it returns."""
    info = info or DistInfo()
    device = info.device
    fast = cfg.fast_path(device)
    prepare_model(model, device, fast)
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), cfg.eps)
    out_dir = Path(cfg.output_dir) if cfg.output_dir else None
    ckpt_dir = out_dir / "checkpoints" if out_dir else None
    metrics_path = out_dir / "metrics.jsonl" if out_dir and info.is_main else None
    if out_dir and info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    loggers = (
        open_loggers(out_dir, cfg.tensorboard, cfg.wandb_project, cfg.wandb_mode, dataclasses.asdict(cfg))
        if info.is_main
        else Loggers([])
    )

    step, epoch = 0, 0
    latest = find_latest(ckpt_dir) if ckpt_dir and cfg.resume else None
    if latest is not None:
        state = load_checkpoint(latest)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, epoch = int(state["step"]), int(state["epoch"])
        loader_states = state["loader"]
        if len(loader_states) != info.world_size:
            raise ValueError(f"checkpoint was written by {len(loader_states)} ranks, this run has {info.world_size}")
        source.load_state_dict(loader_states[info.rank])
        torch.set_rng_state(state["rng"])
    else:
        source.set_epoch(0)

    net: nn.Module = model
    # DDP's gradient_as_bucket_view: a gradient set to None is re-created by autograd and copied
    # into its bucket at every backward; zeroed in place it stays the bucket's view.
    grads_in_buckets = info.world_size > 1
    if grads_in_buckets:
        # Gradients live in DDP's buckets (no copy) as long as they are zeroed in place, never set to
        # None (see the loop); a single forward per step keeps the graph static.
        net = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            gradient_as_bucket_view=True,
            static_graph=cfg.accum_steps == 1,
        )
    loss_fn = ReinforcedClipLoss(cfg.lam, cfg.num_teachers, cfg.teacher_logit_scale)
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if cfg.precision == "bf16"
        else contextlib.nullcontext()
    )
    stream = BatchStream(source, epoch)
    result = TrainResult(step=step)
    end = cfg.steps if cfg.stop_at is None else min(cfg.steps, cfg.stop_at)
    memory_format = image_memory_format(fast)
    step_numbers = itertools.count(step)

    def produce() -> tuple[int, list[Any], dict[str, Any], int]:
        raw = [stream.next() for _ in range(cfg.accum_steps)]
        # The source is read ahead of the step that uses it: remember where it stood after
        # this step's batches, which is what a checkpoint after this step must hold.
        return next(step_numbers), raw, source.state_dict(), stream.epoch

    def stage(host: tuple[int, list[Any], dict[str, Any], int]) -> _StepBatches:
        number, raw, loader_state, batch_epoch = host
        mix_gen = keyed_generator(cfg.seed, number, info.rank, 3)
        prepared = [_prepare(as_batch(b), model, cfg, device, mix_gen, memory_format) for b in raw]
        return _StepBatches(number, prepared, loader_state, batch_epoch)

    prefetcher = DevicePrefetcher(produce, stage, device)
    position = (source.state_dict(), stream.epoch)  # of the source after the last step taken

    def checkpoint() -> None:
        if ckpt_dir is None:
            return
        loader_states = all_gather_objects(position[0], info)
        if info.is_main:
            save_checkpoint(
                ckpt_dir,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    "epoch": position[1],
                    "loader": loader_states,
                    "rng": torch.get_rng_state(),
                    "config": dataclasses.asdict(cfg),
                    "model_name": model.name,
                },
            )

    pending: list[tuple[dict[str, Any], dict[str, torch.Tensor]]] = []
    first_step = step + 1
    window = {"t0": time.perf_counter(), "samples": 0}

    def read_back() -> None:
        """Fetch the pending steps' device values (the one synchronisation) and write their records."""
        if not pending:
            return
        keys = list(pending[0][1])
        # float64 holds every float32 value exactly: one table, one device-to-host copy.
        table = torch.stack([torch.stack([t[k] for _, t in pending]).double() for k in keys]).tolist()
        values = dict(zip(keys, table))
        elapsed = time.perf_counter() - window["t0"]
        for i, (record, _) in enumerate(pending):
            record.update({k: v[i] for k, v in values.items()})
            record.update(samples_per_s=window["samples"] / elapsed, step_s=elapsed / len(pending))
            compiled = fast.compile and record["step"] == first_step
            if compiled:  # read back alone (see the loop): this first step's time is the compilation
                record["compile_s"] = elapsed
            result.history.append(record)
            if record["step"] % cfg.log_every == 0 or record["step"] == end or compiled:
                _log_line(metrics_path, record)
                loggers.log(record)
        bar.set_postfix(loss=f"{pending[-1][0]['loss']:.4f}", lr=f"{pending[-1][0]['lr']:.2e}")
        pending.clear()
        window.update(t0=time.perf_counter(), samples=0)

    bar = tqdm(total=cfg.steps, initial=step, disable=not (cfg.progress and info.is_main), dynamic_ncols=True)
    model.train()
    try:
        while step < end:
            t0 = time.perf_counter()
            batches: _StepBatches = prefetcher.next(more=step + 1 < end)
            t_data = time.perf_counter() - t0
            lr = lr_at(step, cfg.lr, cfg.warmup, cfg.steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if fast.uses_cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()

            stats = _train_step(net, loss_fn, batches.prepared, autocast)
            stats["grad_norm"] = _grad_norm(model, cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=not grads_in_buckets)
            model.clamp_logit_scale()
            stats["logit_scale"] = model.logit_scale.detach().exp()
            step += 1
            position = (batches.loader_state, batches.epoch)

            window["samples"] += sum(p.images.shape[0] for p in batches.prepared) * info.world_size
            pending.append(({"step": step, "epoch": batches.epoch, "lr": lr, "data_s": t_data}, stats))
            bar.update(1)
            saving = bool(cfg.save_every and step % cfg.save_every == 0)
            evaluating = eval_fn is not None and (bool(cfg.eval_every and step % cfg.eval_every == 0) or step == end)
            compiled_now = fast.compile and step == first_step  # its time is the compile time: report it
            if step % cfg.log_every == 0 or step == end or saving or evaluating or compiled_now:
                read_back()

            if saving:
                checkpoint()
            if evaluating:
                model.eval()
                t_eval = time.perf_counter()
                evals = eval_fn(model)  # type: ignore[misc]
                model.train()
                if info.is_main:
                    eval_record = {
                        "step": step,
                        **{f"eval/{k}": v for k, v in evals.items()},
                        "eval/seconds": time.perf_counter() - t_eval,
                    }
                    result.history.append(eval_record)
                    _log_line(metrics_path, eval_record)
                    loggers.log(eval_record)
                window.update(t0=time.perf_counter(), samples=0)
        read_back()
    finally:
        prefetcher.close()
        bar.close()
        loggers.close()
    checkpoint()
    result.step = step
    return result


# ---------------------------------------------------------------- command line
def default_loader_image_dtype(device: torch.device) -> str:
    """uint8 on CUDA: a quarter of the bytes page-locked and copied, normalised on the GPU
    (``_images_on_device``); float32 on the CPU, where the loader's threads normalise."""
    return "uint8" if device.type == "cuda" else "float32"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--store", help="DR store directory (read with mobileclip_fastload.FastReinforcedLoader)")
    data.add_argument("--fake-data", type=int, metavar="N", help="N random reinforced samples in memory (smoke runs)")
    p.add_argument("--model", default="MobileCLIP-S0", choices=list_models())
    p.add_argument(
        "--pretrained",
        default=None,
        metavar="PATH",
        help="start from these weights: Apple's mobileclip2_*.pt / open_clip, timm image tower, or "
        "Apple's v1 layout (python/mobileclip_fastload_train/models/checkpoints.py)",
    )
    p.add_argument("--batch-size", type=int, default=256, help="per process, per micro-batch")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--wd", type=float, default=d.weight_decay)
    p.add_argument("--beta1", type=float, default=d.beta1)
    p.add_argument("--beta2", type=float, default=d.beta2)
    p.add_argument("--eps", type=float, default=d.eps)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--grad-clip", type=float, default=d.grad_clip)
    p.add_argument("--precision", choices=("bf16", "fp32"), default=d.precision)
    p.add_argument("--accum-steps", type=int, default=d.accum_steps)
    p.add_argument("--lambda", dest="lam", type=float, default=d.lam, help="distillation weight (S*: 1.0, B: 0.75)")
    p.add_argument("--num-teachers", type=int, default=None, help="K (default: from the store, else 2)")
    p.add_argument(
        "--teacher-logit-scale",
        type=float,
        nargs="+",
        default=list(d.teacher_logit_scale[:1]),
        metavar="ALPHA",
        help="distillation logit scale: one for all teachers (DataCompDR: 100) "
        "or one per teacher (MobileCLIP2's DFN teachers: 70 60)",
    )
    p.add_argument("--loss-captions", choices=LOSS_CAPTIONS, default=d.loss_captions)
    p.add_argument(
        "--caption-sets",
        default=None,
        metavar="REGEX",
        help="the store's synthetic caption sets to draw from, a regex matched as Apple's "
        "--dataset-reinforcement-syn-text-key-regex (re.match); default every set (docs/FORMAT.md, Caption sets)",
    )
    p.add_argument("--mix-probability", type=float, default=d.mix_probability)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--output", required=True, help="run directory (metrics.jsonl, checkpoints/)")
    p.add_argument("--save-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --output")
    p.add_argument("--stop-at", type=int, default=None, help="end after this step (the schedule still uses --steps)")
    p.add_argument(
        "--num-threads", type=int, default=None, help="loader decode threads (FastReinforcedLoader num_threads)"
    )
    p.add_argument(
        "--loader-image-dtype",
        choices=("float32", "uint8"),
        default=None,
        help="loader image dtype (default: uint8 on CUDA, normalised there; float32 on the CPU)",
    )
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="image tower in channels_last (default: on CUDA only; see python/mobileclip_fastload_train/step.py)",
    )
    p.add_argument("--compile", action="store_true", help="regional torch.compile (each block compiled on its own)")
    p.add_argument(
        "--compile-mode",
        choices=COMPILE_MODES,
        default=d.compile_mode,
        help="reduce-overhead: CUDA graphs in every compiled region",
    )
    p.add_argument("--grad-checkpointing", action="store_true", help="recompute block activations in backward")
    p.add_argument("--no-progress", action="store_true")
    _evaluation_arguments(p)
    _logging_arguments(p)
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default=None,
        help=(
            "a named preset of the values above (python/mobileclip_fastload_train/recipes.py); "
            "flags given here override it"
        ),
    )
    args = p.parse_args(argv)
    if args.recipe is not None:  # the recipe's values become the defaults: flags given explicitly still win
        p.set_defaults(**RECIPES[args.recipe])
        args = p.parse_args(argv)
        if os.environ.get("RANK", "0") == "0":  # printed once per run, before torchrun's ranks start work
            print(describe(args.recipe, vars(args)), flush=True)
    return args


def _evaluation_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "evaluation during training (mobileclip_fastload_train.validation; needs the `eval` extra)"
    )
    g.add_argument("--val-zeroshot", metavar="DIR", help="zero-shot set: an ImageNet-style folder of class folders")
    g.add_argument(
        "--val-classnames",
        metavar="FILE",
        help="class names for --val-zeroshot (JSON list, JSON object "
        "folder->name, or one per line; default: open_clip's ImageNet names for 1000 folders, else folder names)",
    )
    g.add_argument(
        "--val-templates",
        metavar="FILE",
        help="prompt templates ({} = class name; default: open_clip's OpenAI ImageNet templates)",
    )
    g.add_argument(
        "--val-retrieval", metavar="JSON", help="retrieval set: captions JSON (Karpathy split or COCO captions)"
    )
    g.add_argument("--val-retrieval-images", metavar="DIR", help="image root of --val-retrieval (default: its folder)")
    g.add_argument("--val-retrieval-split", default="test", help="Karpathy split to evaluate (default test)")
    g.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (0: only at the end)")
    g.add_argument("--val-batch-size", type=int, default=64)
    g.add_argument("--val-workers", type=int, default=2, help="image decoding processes per rank")


def _logging_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("logging (metrics.jsonl always; mobileclip_fastload_train.run_logging)")
    g.add_argument("--tensorboard", action="store_true", help="TensorBoard scalars in <output>/tensorboard")
    g.add_argument("--wandb", metavar="PROJECT", default=None, help="log to W&B project PROJECT (needs wandb)")
    g.add_argument(
        "--wandb-mode",
        choices=WANDB_MODES,
        default="offline",
        help="offline (default; upload later with `wandb sync`), online or disabled",
    )


def _validation(args: argparse.Namespace, model: CLIPModel, info: DistInfo):
    """The evaluation ``--val-zeroshot`` / ``--val-retrieval`` ask for (None when neither is given)."""
    if not (args.val_zeroshot or args.val_retrieval):
        return None
    import importlib.util

    if importlib.util.find_spec("clip_benchmark") is None:  # its metrics; fail now, not at the first evaluation
        raise SystemExit(
            "error: --val-zeroshot/--val-retrieval need clip_benchmark: pip install 'mobileclip-fastload[eval]'"
        )
    from mobileclip_fastload_train.eval_data import eval_transform, load_captions, load_class_folder
    from mobileclip_fastload_train.validation import Validation

    transform = eval_transform(model.preprocess)
    zero_shot = retrieval = None
    if args.val_zeroshot:
        zero_shot = load_class_folder(args.val_zeroshot, transform, args.val_classnames, args.val_templates)
    if args.val_retrieval:
        images = args.val_retrieval_images or str(Path(args.val_retrieval).parent)
        retrieval = load_captions(images, args.val_retrieval, transform, args.val_retrieval_split)
    return Validation(
        zero_shot,
        retrieval,
        batch_size=args.val_batch_size,
        workers=args.val_workers,
        autocast=args.precision == "bf16" and info.device.type == "cuda",
        info=info,
    )


def main(argv: list[str] | None = None) -> TrainResult:
    args = _parse(argv)
    import importlib.util

    if args.wandb and importlib.util.find_spec("wandb") is None:  # say so before any work, not at the first log
        raise SystemExit("error: --wandb needs the wandb package: pip install wandb")
    info = init_distributed(args.device)
    try:
        torch.manual_seed(args.seed)
        model = create_model(args.model)
        if args.pretrained:
            load_pretrained(model, args.pretrained)
        pre = model.preprocess
        if args.store:
            source = open_store_loader(
                args.store,
                args.batch_size,
                pre.image_size,
                pre.interpolation,
                pre.mean,
                pre.std,
                args.loss_captions,
                args.mix_probability,
                args.seed,
                args.num_threads,
                args.loader_image_dtype or default_loader_image_dtype(info.device),
                pin_memory=info.device.type == "cuda",
                caption_sets=args.caption_sets,
            )
            num_teachers = args.num_teachers or int(source.dims["K"])
        else:
            num_teachers = args.num_teachers or 2
            source = random_reinforced_source(
                args.fake_data,
                args.batch_size,
                pre.image_size,
                num_teachers=num_teachers,
                seed=args.seed,
                rank=info.rank,
                world_size=info.world_size,
            )
        cfg = TrainConfig(
            steps=args.steps,
            lr=args.lr,
            weight_decay=args.wd,
            beta1=args.beta1,
            beta2=args.beta2,
            eps=args.eps,
            warmup=args.warmup,
            grad_clip=args.grad_clip,
            precision=args.precision,
            accum_steps=args.accum_steps,
            lam=args.lam,
            num_teachers=num_teachers,
            teacher_logit_scale=args.teacher_logit_scale,
            loss_captions=args.loss_captions,
            mix_probability=args.mix_probability,
            seed=args.seed,
            output_dir=args.output,
            save_every=args.save_every,
            log_every=args.log_every,
            resume=not args.no_resume,
            stop_at=args.stop_at,
            progress=not args.no_progress,
            channels_last=args.channels_last,
            compile=args.compile,
            compile_mode=args.compile_mode,
            grad_checkpointing=args.grad_checkpointing,
            eval_every=args.eval_every,
            tensorboard=args.tensorboard,
            wandb_project=args.wandb,
            wandb_mode=args.wandb_mode,
        )
        return train(cfg, model, source, info, eval_fn=_validation(args, model, info))
    finally:
        cleanup()


if __name__ == "__main__":
    main()
