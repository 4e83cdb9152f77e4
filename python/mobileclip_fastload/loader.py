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

import dataclasses
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mobileclip_fastload._core import LoaderCore
from mobileclip_fastload.pinned import InFlightCopies, PinnedBuffers
from mobileclip_fastload.store import caption_sets

log = logging.getLogger(__name__)

_STATE_VERSION = 1

#: How the training replay resamples the crop, for students as for teachers: Apple's DR
#: pipeline copies open_clip's training RandomResizedCrop, which hard-codes BICUBIC
#: (docs/REPLAY.md). open_clip's "bilinear" for MobileCLIP is its evaluation transform.
TRAINING_INTERPOLATION = "bicubic"


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
    syn_index: torch.Tensor  # [B] synthetic caption used (0..S-1, its flat position across all caption sets)
    caption_set: torch.Tensor  # [B] caption set of that caption (its index in ``store.caption_sets``)
    text_is_syn: torch.Tensor  # [B] bool, True where `text` is synthetic (mix mode)
    epoch: int
    batch_number: int
    memory: Any = field(repr=False)  # owner of the buffers the tensors view (None once on a device)
    # The loader's record of copies in flight from its page-locked memory (None when not pinned).
    copies: InFlightCopies | None = field(default=None, repr=False, compare=False)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ReinforcedBatch:
        """This batch with every tensor on ``device``. With ``non_blocking`` from page-locked loader
        memory the copies run after this returns; the host memory is then held (not recycled)
        until they have run on the GPU, so the batch may be dropped at once."""
        device = torch.device(device)
        tensors = {
            f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        if self.copies is not None and self.memory is not None and non_blocking and device.type == "cuda":
            self.copies.hold(self.memory)  # an event after the copies just queued on the current stream
        return ReinforcedBatch(epoch=self.epoch, batch_number=self.batch_number, memory=None, **tensors)

    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        return (self.images, self.text, self.image_emb, self.text_emb, self.syn_text, self.syn_text_emb)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.as_tuple())

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.as_tuple()[i]

    def __len__(self) -> int:
        return int(self.images.shape[0])


# Fields a training step copies to the GPU (the rest are bookkeeping, or copies like text_is_syn).
_COPIED_TO_DEVICE = ("images", "text", "syn_text", "image_emb", "text_emb", "syn_text_emb")


def resolve_caption_sets(selection: str | Sequence[str] | None, names: Sequence[str]) -> list[int] | None:
    """The indices (into ``names``, a store's caption set names, in storage order) of the sets ``selection`` chooses:
    None (every set), a sequence of set names or tags (each must exist), or a regular expression matched as
    Apple's ``--dataset-reinforcement-syn-text-key-regex`` is (``re.match``). The rules are convert's
    (``mobileclip_fastload.store.caption_sets``); a ValueError names what did not resolve and lists the store's sets."""
    if selection is None:
        return None
    try:
        picked = _picked_sets(selection, names)
    except ValueError as e:
        raise ValueError(f"caption_sets: {e}") from None  # the argument named, as every loader setting's error
    # storage order: the same sets draw the same captions however they are listed
    return sorted(list(names).index(name) for name in picked)


def _picked_sets(selection: str | Sequence[str], names: Sequence[str]) -> list[str]:
    if isinstance(selection, str):
        return caption_sets.select_sets(selection, names)
    else:
        try:
            requested = list(selection)
        except TypeError:
            why = f"caption_sets must be None, a regex (str) or a list of set names, got {selection!r}"
            raise TypeError(why) from None
        if not all(isinstance(name, str) for name in requested):
            raise TypeError(f"caption_sets must name sets by str, got {requested!r}")
        return caption_sets.resolve_set_names(requested, names)


def _default_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class FastReinforcedLoader:
    """Iterate a DR store in batches of reinforced samples.

    Args:
        store: path of a DR store directory, or the URL of one in object storage
            (``s3://``, ``gs://``, ``az://``, ``http(s)://``, ``file://``; docs/REMOTE.md),
            whose shards are downloaded whole into a bounded local cache.
        batch_size: samples per batch (per rank).
        image_size: output side length: the student's own size (MobileCLIP S0-S2: 256, B: 224).
        interpolation: "bicubic" (default: what Apple's pipeline replays, for students and
            teachers alike, see `TRAINING_INTERPOLATION`) or "bilinear"; Pillow-exact.
        mean, std: per-channel normalisation for float32 output (default 0 / 1, as MobileCLIP).
        image_dtype: "float32" (ToTensor + Normalize, bit-identical to torchvision) or
            "uint8" (raw pixels; normalise on the GPU).
        embedding_output_dtype: "float16" or "float32" for the teacher embeddings.
        num_threads: decode/augment threads (default: all cores; at most MAX_LOADER_THREADS, 1024).
        seed, shuffle, drop_last: as a seeded DistributedSampler + DataLoader.
        rank, world_size: DDP sharding (default: from torch.distributed, else 0/1).
        caption_mode: "both" (real + one synthetic caption) or "mix" (the `text`
            slot is synthetic with probability `mix_probability`).
        prefetch: batches assembled ahead of the consumer (default 2 * num_threads).
        pin_memory: page-lock (``cudaHostRegister``) the loader's recycled batch memory
            the first time each buffer is delivered, so ``tensor.to("cuda", non_blocking=True)``
            copies straight from it, asynchronously, with no per-batch copy (CUDA only). The
            memory of a batch is then recycled only after the copies queued on the current CUDA
            stream before the next ``next()`` (or ``batch.to(device, non_blocking=True)``) have
            run: dropping a batch right after queuing its copy is safe. Copies queued on another
            stream must keep the batch themselves until they have run (``training``'s
            ``DevicePrefetcher`` does).
        on_error: "skip" (replace an undecodable image deterministically, count
            and log it; `skipped` lists each such sample once) or "raise" (the
            error comes from `next()` after every batch before it, in order).
        dct_scaling: None (default) replays bit-identically to Pillow + torchvision.
            A ratio r > 0 allows a faster, inexact JPEG decode at 1/d scale
            (d = 8, 4 or 2) in the DCT domain when the crop is at least
            r * d * image_size pixels on both sides (1.0: the scaled crop still
            covers the output; PSNR vs exact: see benches/bench_imaging.py and
            the README). The same knob as ``_core.replay_augmentation``'s.
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
        caption_sets: which synthetic caption sets (``Store.caption_sets``; docs/FORMAT.md, "Caption
            sets") the synthetic caption is drawn from: None (every set), a list of set names, or a
            regular expression matched at the start of each name (``re.match``, as Apple's
            ``--dataset-reinforcement-syn-text-key-regex``). Per sample one chosen set is drawn
            uniformly, then one caption of it, both from (seed, epoch, sample); ``batch.caption_set``
            says which set. A store with one set draws exactly as before.

    Iteration: each ``iter(loader)`` is an independent iterator with its own
    cursor and worker threads, as with a DataLoader. It starts at the loader's
    position, ``(epoch, batches_done)`` as ``state_dict()`` reports it, and
    runs to the end of that epoch. The position follows the newest iterator:
    it advances with each batch that iterator delivers and moves to the next
    epoch after its last batch. Older iterators keep delivering their own
    epoch but no longer move the position, and closing, abandoning or deleting
    any iterator never affects another. ``set_epoch`` and ``load_state_dict``
    set the position (no existing iterator moves it afterwards).

    Memory: a batch buffer holds at most this rank's samples per epoch; a
    configuration whose buffers could not fit in the machine's memory raises
    ``MemoryError`` here, impossible values ``ValueError`` and values of the
    wrong type ``TypeError``, each naming the argument (the Rust core checks
    every setting). No store at ``store`` raises ``StoreNotFoundError`` (a
    ``FileNotFoundError``), as ``Store(store)`` does.
    """

    def __init__(
        self,
        store: str | os.PathLike[str],
        batch_size: int,
        *,
        image_size: int = 256,
        interpolation: str = TRAINING_INTERPOLATION,
        mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
        std: tuple[float, float, float] = (1.0, 1.0, 1.0),
        image_dtype: str = "float32",
        embedding_output_dtype: str = "float16",
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
        dct_scaling: float | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_size: int | None = None,
        storage_options: dict[str, str] | None = None,
        order: str = "auto",
        shuffle_window: int = 4,
        caption_sets: str | Sequence[str] | None = None,
    ) -> None:
        default_rank, default_world = _default_rank_world()
        self._core = LoaderCore(
            store,
            batch_size=batch_size,
            image_size=image_size,
            interpolation=interpolation,
            mean=mean,
            std=std,
            image_dtype=image_dtype,
            embedding_output_dtype=embedding_output_dtype,
            num_threads=num_threads,
            seed=seed,
            shuffle=shuffle,
            drop_last=drop_last,
            rank=default_rank if rank is None else rank,
            world_size=default_world if world_size is None else world_size,
            caption_mode=caption_mode,
            mix_probability=mix_probability,
            prefetch=prefetch,
            on_error=on_error,
            dct_scaling=dct_scaling,
            cache_dir=cache_dir,
            cache_size=cache_size,
            storage_options=storage_options,
            order=order,
            shuffle_window=shuffle_window,
            # Names or a regex are resolved against the store's set names once the core has opened it.
            caption_sets=None if caption_sets is None else (lambda names: resolve_caption_sets(caption_sets, names)),
        )
        self._config = self._core.config()  # the checked settings
        self.store_path = os.fspath(store)
        self.pin_memory = bool(pin_memory) and torch.cuda.is_available()
        self._pinned = PinnedBuffers() if self.pin_memory else None
        self._in_flight = InFlightCopies() if self.pin_memory else None
        self.epoch = 0
        self._position = 0  # batches of `epoch` already delivered
        self._generation = 0  # which iterator (if any) moves the position
        self._reported_skips = 0

    # -- DataLoader-like surface ---------------------------------------------
    def __len__(self) -> int:
        return self._core.num_batches()

    @property
    def batch_size(self) -> int:
        return self._config["batch_size"]

    @property
    def image_dtype(self) -> str:
        """Image dtype: "float32" (normalised) or "uint8"."""
        return self._config["image_dtype"]

    @property
    def embedding_output_dtype(self) -> str:
        """Teacher-row output dtype: "float16" or "float32"."""
        return self._config["embedding_output_dtype"]

    @property
    def num_batches(self) -> int:
        """Batches per epoch on this rank (``len(loader)``): OpenCLIP's loop reads ``dataloader.num_batches``."""
        return len(self)

    @property
    def num_samples(self) -> int:
        """Samples in the store (all ranks), as OpenCLIP's data sources set ``dataloader.num_samples``."""
        return self._core.num_samples()

    @property
    def dims(self) -> dict[str, int]:
        return self._core.dims()

    @property
    def caption_sets(self) -> list[str]:
        """Names of the caption sets synthetic captions are drawn from (all of the store's by default)."""
        names = [name for name, _ in self._core.caption_sets()]
        return [names[i] for i in self._config["caption_sets"]]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to iterate next (restarts it from its first batch)."""
        self._move_to(self._core.check_epoch(epoch), 0)

    def __iter__(self) -> Iterator[ReinforcedBatch]:
        return _LoaderIterator(self)

    def _move_to(self, epoch: int, position: int) -> None:
        self.epoch, self._position = epoch, position
        self._generation += 1  # no existing iterator moves the position any more

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
            "caption_sets": self.caption_sets,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported loader state version {state.get('version')!r}")
        mine = self.state_dict()
        # States saved before shard-block order / caption sets existed: global order, the store's one set.
        state = {"order": "global", "caption_sets": [n for n, _ in self._core.caption_sets()], **state}
        keys = ("seed", "batch_size", "world_size", "shuffle", "drop_last", "num_samples", "order", "caption_sets")
        for key in keys:
            if state[key] != mine[key]:
                raise ValueError(
                    f"loader state was saved with {key}={state[key]!r} but this loader has {key}={mine[key]!r}; "
                    "resuming would not reproduce the interrupted run"
                )
        if not 0 <= state["batches_done"] <= len(self):
            raise ValueError(f"batches_done={state['batches_done']} out of range for {len(self)} batches per epoch")
        self._move_to(self._core.check_epoch(state["epoch"]), int(state["batches_done"]))

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

    def close(self) -> None:
        """Wait for the copies still reading the batch memory, then unpin it (the loader's buffers
        stay valid as ordinary memory). Batches delivered afterwards are not page-locked."""
        pinned, in_flight = getattr(self, "_pinned", None), getattr(self, "_in_flight", None)
        self._pinned = self._in_flight = None
        self.pin_memory = False
        if in_flight is not None:
            try:
                in_flight.wait_all()
            except Exception as e:  # interpreter shutdown: the CUDA context may be gone already
                log.debug("waiting for copies failed: %s", e)
        if pinned is not None:
            pinned.unregister_all()

    def __del__(self) -> None:
        # Registrations must end before the Rust side can free the buffers (when the core goes);
        # getattr: a constructor that raised leaves no `_pinned`.
        if getattr(self, "_pinned", None) is not None:
            self.close()

    def _to_batch(self, raw: dict[str, Any]) -> ReinforcedBatch:
        tensors = {k: torch.from_numpy(v) for k, v in raw.items() if isinstance(v, np.ndarray)}
        tensors["text_is_syn"] = tensors["text_is_syn"].bool()
        if self._pinned is not None:
            for name in _COPIED_TO_DEVICE:
                self._pinned.register(tensors[name])
        return ReinforcedBatch(
            epoch=raw["epoch"],
            batch_number=raw["batch_number"],
            memory=raw["memory"],
            copies=self._in_flight,
            **tensors,
        )

    def _hold_until_copied(self, memory: Any) -> None:
        """Keep a delivered batch's memory until what the current stream has queued so far (its
        copies, made before the caller asked for the next batch) has run."""
        if memory is not None and self._in_flight is not None and torch.cuda.is_initialized():
            self._in_flight.hold(memory)


class _LoaderIterator:
    """One pass over one epoch of a FastReinforcedLoader (see its docstring)."""

    def __init__(self, loader: FastReinforcedLoader) -> None:
        self._loader = loader
        self._epoch, self._next = loader.epoch, loader._position
        self._run = loader._core.start_epoch(self._epoch, self._next)
        loader._generation += 1
        self._generation = loader._generation
        self._lock = threading.Lock()  # one next() at a time on this iterator
        self._delivered: Any = None  # memory of the batch delivered last (see FastReinforcedLoader's pin_memory)

    def __iter__(self) -> _LoaderIterator:
        return self

    def __next__(self) -> ReinforcedBatch:
        with self._lock:
            self._retire_delivered()
            if self._run is None:
                raise StopIteration
            try:
                raw = self._run.next_batch()
            except BaseException:
                self.close()  # an error ends the pass; the position stays at the failed batch
                raise
            loader = self._loader
            if raw is None:  # the end of the epoch
                self.close()
                if loader._generation == self._generation:
                    loader.epoch, loader._position = self._epoch + 1, 0
                raise StopIteration
            self._next += 1
            if loader._generation == self._generation:
                done = self._next == len(loader)
                loader.epoch, loader._position = (self._epoch + 1, 0) if done else (self._epoch, self._next)
            loader._log_new_skips()
            if loader._in_flight is not None:
                self._delivered = raw["memory"]
            return loader._to_batch(raw)

    def _retire_delivered(self) -> None:
        memory, self._delivered = self._delivered, None
        self._loader._hold_until_copied(memory)

    def close(self) -> None:
        """Stop this iterator's workers now (dropping it does the same)."""
        self._retire_delivered()
        run, self._run = self._run, None
        if run is not None:
            run.stop()

    def __del__(self) -> None:
        if getattr(self, "_delivered", None) is not None:
            self._retire_delivered()
