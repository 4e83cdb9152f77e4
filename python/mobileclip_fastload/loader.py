"""`FastReinforcedLoader`: a drop-in for the `DataLoader` of a MobileCLIP
reinforced-training loop.

Rust threads (GIL released) read the memory-mapped store, decode JPEGs with
libjpeg-turbo, replay the stored augmentation pixel-exactly and write into
recycled batch memory that reaches Python as zero-copy torch tensors. The
samples, their augmentation and caption choices are pure functions of
(seed, epoch, sample), so results do not depend on thread count or timing,
and a run resumed from `state_dict()` yields exactly the remaining batches.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from mobileclip_fastload._core import LoaderCore

log = logging.getLogger(__name__)

_STATE_VERSION = 1


@dataclass
class ReinforcedBatch:
    """One batch. Unpacks as the 6-tuple an OpenCLIP-style DR loop expects:
    ``image, text, image_emb, text_emb, syn_text, syn_text_emb = batch``."""

    images: torch.Tensor  # [B, 3, H, W] float32 (normalised) or uint8
    text: torch.Tensor  # [B, 77] int64 real caption (mix mode: the chosen caption)
    image_emb: torch.Tensor  # [B, K*D] teacher embeddings of the chosen augmentation
    text_emb: torch.Tensor  # [B, K*D] of `text`
    syn_text: torch.Tensor  # [B, 77] int64 the chosen synthetic caption
    syn_text_emb: torch.Tensor  # [B, K*D]
    index: torch.Tensor  # [B] global sample index
    aug_index: torch.Tensor  # [B] augmentation used (0..J-1)
    syn_index: torch.Tensor  # [B] synthetic caption used (0..S-1)
    text_is_syn: torch.Tensor  # [B] bool, True where `text` is synthetic (mix mode)
    epoch: int
    batch_number: int
    memory: Any = field(repr=False)  # owner of the buffers the tensors view

    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        return (self.images, self.text, self.image_emb, self.text_emb, self.syn_text, self.syn_text_emb)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.as_tuple())

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.as_tuple()[i]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _default_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class FastReinforcedLoader:
    """Iterate a DR store in batches of reinforced samples.

    Args:
        store: path of a DR store directory, or the URL of one in object storage
            (``s3://``, ``gs://``, ``az://``, ``http(s)://``, ``file://``; docs/REMOTE.md),
            whose shards are downloaded whole into a bounded local cache.
        batch_size: samples per batch (per rank).
        image_size: output side length (MobileCLIP S0-S2: 256).
        interpolation: "bilinear" (students) or "bicubic" (teachers), Pillow-exact.
        mean, std: per-channel normalisation for float32 output (default 0 / 1, as MobileCLIP).
        output: "float32" (ToTensor + Normalize, bit-identical to torchvision) or
            "uint8" (raw pixels; normalise on the GPU).
        embedding_dtype: "float16" or "float32" for the teacher embeddings.
        num_threads: decode/augment threads (default: all cores).
        seed, shuffle, drop_last: as a seeded DistributedSampler + DataLoader.
        rank, world_size: DDP sharding (default: from torch.distributed, else 0/1).
        caption_mode: "both" (real + one synthetic caption) or "mix" (the `text`
            slot is synthetic with probability `mix_probability`).
        prefetch: batches assembled ahead of the consumer (default 2 * num_threads).
        pin_memory: copy each batch into pinned memory (CUDA only).
        on_error: "skip" (replace an undecodable image deterministically, count
            and log it) or "raise".
        exact: True (default) replays bit-identically to Pillow + torchvision.
            False allows a faster, inexact JPEG decode at 1/2, 1/4 or 1/8 scale
            in the DCT domain when the crop is large enough (PSNR vs exact: see
            benches/bench_imaging.py and the README).
        cache_dir, cache_size: remote stores: where downloaded shards are kept
            (default ``~/.cache/mobileclip-fastload``) and at most how many bytes
            (default 16 GiB; must hold about ``shuffle_window`` + 4 shards).
        storage_options: remote stores: ``object_store`` settings (e.g.
            ``{"aws_endpoint": ..., "allow_http": "true"}``) on top of the usual
            environment variables (``AWS_*``, ``GOOGLE_*``, ``AZURE_*``).
        order: "global" (a seeded permutation of all samples), "shard_block"
            (shards permuted per epoch, samples shuffled within windows of
            ``shuffle_window`` shards; each rank reads a contiguous run of shards)
            or "auto" (shard_block for remote stores, global for local ones).
    """

    def __init__(
        self,
        store: str | os.PathLike[str],
        batch_size: int,
        *,
        image_size: int = 256,
        interpolation: str = "bilinear",
        mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
        std: tuple[float, float, float] = (1.0, 1.0, 1.0),
        output: str = "float32",
        embedding_dtype: str = "float16",
        num_threads: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        caption_mode: str = "both",
        mix_probability: float = 0.5,
        prefetch: int | None = None,
        pin_memory: bool = False,
        on_error: str = "skip",
        exact: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_size: int | None = None,
        storage_options: dict[str, str] | None = None,
        order: str = "auto",
        shuffle_window: int = 4,
    ) -> None:
        batch_size = _check_int("batch_size", batch_size, 1)
        image_size = _check_int("image_size", image_size, 1)
        num_threads = _check_int("num_threads", num_threads if num_threads is not None else (os.cpu_count() or 1), 1)
        prefetch = _check_int("prefetch", prefetch if prefetch is not None else 2 * num_threads, 1)
        seed = _check_int("seed", seed, 0)
        default_rank, default_world = _default_rank_world()
        rank = _check_int("rank", default_rank if rank is None else rank, 0)
        world_size = _check_int("world_size", default_world if world_size is None else world_size, 1)
        if rank >= world_size:
            raise ValueError(f"rank must be < world_size (got rank {rank}, world_size {world_size})")
        if len(mean) != 3 or len(std) != 3:
            raise ValueError("mean and std must have 3 values (one per RGB channel)")
        if any(float(s) == 0.0 for s in std):
            raise ValueError("std must be non-zero")
        if not 0.0 <= float(mix_probability) <= 1.0:
            raise ValueError(f"mix_probability must be in [0, 1], got {mix_probability}")
        location = os.fspath(store)
        if "://" not in location and not os.path.isdir(location):
            raise FileNotFoundError(f"no DR store at {os.fspath(store)!r}")
        self._config = dict(
            batch_size=batch_size,
            image_size=image_size,
            interpolation=interpolation,
            output=output,
            mean=tuple(float(v) for v in mean),
            std=tuple(float(v) for v in std),
            embedding_dtype=embedding_dtype,
            num_threads=num_threads,
            prefetch=prefetch,
            seed=seed,
            shuffle=bool(shuffle),
            drop_last=bool(drop_last),
            rank=rank,
            world_size=world_size,
            caption_mode=caption_mode,
            mix_probability=float(mix_probability),
            on_error=on_error,
            exact=bool(exact),
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
            cache_size=None if cache_size is None else _check_int("cache_size", cache_size, 1),
            storage_options=None if storage_options is None else {str(k): str(v) for k, v in storage_options.items()},
            order=order,
            shuffle_window=_check_int("shuffle_window", shuffle_window, 1),
        )
        self._core = LoaderCore(location, **self._config)
        self.store_path = os.fspath(store)
        self.pin_memory = bool(pin_memory) and torch.cuda.is_available()
        self.epoch = 0
        self._position = 0  # batches of `epoch` already delivered
        self._reported_skips = 0

    # -- DataLoader-like surface ---------------------------------------------
    def __len__(self) -> int:
        return self._core.num_batches()

    @property
    def batch_size(self) -> int:
        return self._config["batch_size"]

    @property
    def num_samples(self) -> int:
        return self._core.num_samples()

    @property
    def dims(self) -> dict[str, int]:
        return self._core.dims()

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to iterate next (restarts it from its first batch)."""
        self.epoch = _check_int("epoch", epoch, 0)
        self._position = 0

    def __iter__(self) -> Iterator[ReinforcedBatch]:
        epoch, start = self.epoch, self._position
        self._core.start_epoch(epoch, start)
        try:
            while True:
                raw = self._core.next_batch()
                if raw is None:
                    break
                self._position += 1
                self._log_new_skips()
                yield self._to_batch(raw)
            self.epoch = epoch + 1
            self._position = 0
        finally:
            self._core.stop()

    # -- resumption ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Where iteration stands: restoring it continues with the next undelivered batch."""
        c = self._config
        return {
            "version": _STATE_VERSION,
            "epoch": self.epoch,
            "batches_done": self._position,
            "seed": c["seed"],
            "batch_size": c["batch_size"],
            "rank": c["rank"],
            "world_size": c["world_size"],
            "shuffle": c["shuffle"],
            "drop_last": c["drop_last"],
            "num_samples": self.num_samples,
            "order": self._core.order(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported loader state version {state.get('version')!r}")
        mine = self.state_dict()
        state = {"order": "global", **state}  # states saved before shard-block order existed
        for key in ("seed", "batch_size", "world_size", "shuffle", "drop_last", "num_samples", "order"):
            if state[key] != mine[key]:
                raise ValueError(
                    f"loader state was saved with {key}={state[key]!r} but this loader has {key}={mine[key]!r}; "
                    "resuming would not reproduce the interrupted run"
                )
        if not 0 <= state["batches_done"] <= len(self):
            raise ValueError(f"batches_done={state['batches_done']} out of range for {len(self)} batches per epoch")
        self.epoch = int(state["epoch"])
        self._position = int(state["batches_done"])

    # -- diagnostics ---------------------------------------------------------
    @property
    def skipped(self) -> list[dict[str, Any]]:
        """Samples whose image did not decode, with their uid and the replacement used."""
        return self._core.skipped()

    def _log_new_skips(self) -> None:
        if self._core.num_skipped() == self._reported_skips:
            return
        skipped = self._core.skipped()
        for s in skipped[self._reported_skips :]:
            log.warning("skipped %s; replaced by index %d", s["reason"], s["replacement"])
        self._reported_skips = len(skipped)

    def _to_batch(self, raw: dict[str, Any]) -> ReinforcedBatch:
        tensors = {
            k: torch.from_numpy(v)
            for k, v in raw.items()
            if isinstance(v, np.ndarray)
        }
        tensors["text_is_syn"] = tensors["text_is_syn"].bool()
        if self.pin_memory:
            tensors = {k: v.pin_memory() for k, v in tensors.items()}
        return ReinforcedBatch(epoch=raw["epoch"], batch_number=raw["batch_number"], memory=raw["memory"], **tensors)
