"""Batch sources for the training loop.

The loop accepts any object with the ``FastReinforcedLoader`` contract:
iterating yields batches of the current epoch starting after the batches
already delivered; ``len()`` is batches per epoch; ``set_epoch(e)`` restarts at
epoch ``e``; ``state_dict()`` / ``load_state_dict()`` capture and restore the
position so a resumed run sees exactly the remaining batches.

A batch is either a mapping or an object with attributes (the loader's
``ReinforcedBatch``) holding: ``images`` float32 ``[B,3,H,W]`` (normalised) or
uint8 (normalised on the device), ``text`` / ``syn_text`` int64 ``[B,77]``,
``image_emb`` / ``text_emb`` / ``syn_text_emb`` ``[B, K*D]`` (float16/32), ``index``
int64 ``[B]`` and optionally ``text_is_syn`` (set when the source already
applied the "mix" caption mode) and ``caption_set`` int64 ``[B]`` (the caption set,
docs/FORMAT.md "Caption sets", each synthetic caption came from).

:class:`InMemoryReinforcedSource` implements the contract over tensors (tests,
small experiments, ``--fake-data``); :func:`open_store_loader` opens a DR store
with the Rust loader.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

FIELDS = ("images", "text", "syn_text", "image_emb", "text_emb", "syn_text_emb", "index")


@dataclass
class TrainingBatch:
    images: torch.Tensor
    text: torch.Tensor
    syn_text: torch.Tensor | None
    image_emb: torch.Tensor | None
    text_emb: torch.Tensor | None
    syn_text_emb: torch.Tensor | None
    index: torch.Tensor | None
    text_is_syn: torch.Tensor | None = None
    caption_set: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


def as_batch(raw: Any) -> TrainingBatch:
    """Normalise a mapping or attribute-style batch to :class:`TrainingBatch`."""
    get = raw.get if isinstance(raw, Mapping) else (lambda k: getattr(raw, k, None))
    fields = {k: get(k) for k in (*FIELDS, "text_is_syn", "caption_set")}
    if fields["images"] is None or fields["text"] is None:
        raise KeyError("a batch needs at least 'images' and 'text'")
    return TrainingBatch(**fields)


def keyed_generator(*keys: int) -> torch.Generator:
    """A generator seeded by a tuple of ints, so draws are a pure function of (seed, epoch, ...)."""
    h = 0x9E3779B97F4A7C15
    for k in keys:
        h = (h ^ (int(k) + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2))) & 0xFFFFFFFFFFFFFFFF
    return torch.Generator().manual_seed(h & 0x7FFFFFFFFFFFFFFF)


class InMemoryReinforcedSource:
    """A reinforced dataset held in memory, iterated like ``FastReinforcedLoader``.

    Args:
        images: ``[N, J, 3, H, W]`` (J stored augmentations per sample) or ``[N, 3, H, W]`` (J = 1).
        text: ``[N, 77]`` real-caption tokens.
        syn_text: ``[N, S, 77]`` synthetic-caption tokens.
        image_emb: ``[N, J, K*D]`` teacher embeddings of each augmentation, or None.
        text_emb: ``[N, 1+S, K*D]`` teacher embeddings, row 0 real caption, or None.
        batch_size: per rank. ``drop_last`` keeps every rank's batch the same size.
    Per epoch, samples are shuffled and each draws one augmentation and one
    synthetic caption, all from (seed, epoch): independent of how far a
    previous run got.
    """

    def __init__(
        self,
        images: torch.Tensor,
        text: torch.Tensor,
        syn_text: torch.Tensor,
        image_emb: torch.Tensor | None,
        text_emb: torch.Tensor | None,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if images.dim() == 4:
            images = images.unsqueeze(1)
            image_emb = image_emb.unsqueeze(1) if image_emb is not None else None
        n = images.shape[0]
        for name, t in (("text", text), ("syn_text", syn_text), ("image_emb", image_emb), ("text_emb", text_emb)):
            if t is not None and t.shape[0] != n:
                raise ValueError(f"{name} has {t.shape[0]} rows but there are {n} images")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for world_size {world_size}")
        self.images, self.text, self.syn_text = images, text, syn_text
        self.image_emb, self.text_emb = image_emb, text_emb
        self.batch_size, self.seed, self.shuffle, self.drop_last = batch_size, seed, shuffle, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._position = 0

    @property
    def num_samples(self) -> int:
        return int(self.images.shape[0])

    def _rank_indices(self, epoch: int) -> torch.Tensor:
        n = self.num_samples
        order = torch.randperm(n, generator=keyed_generator(self.seed, epoch, 1)) if self.shuffle else torch.arange(n)
        per_rank = n // self.world_size
        if self.drop_last:
            per_rank -= per_rank % self.batch_size
        return order[self.rank :: self.world_size][:per_rank]

    def __len__(self) -> int:
        per_rank = len(self._rank_indices(0))
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._position = int(epoch), 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        epoch = self.epoch
        indices = self._rank_indices(epoch)
        g = keyed_generator(self.seed, epoch, 2)
        aug_all = torch.randint(self.images.shape[1], (self.num_samples,), generator=g)
        syn_all = torch.randint(self.syn_text.shape[1], (self.num_samples,), generator=g)
        for b in range(self._position, len(self)):
            idx = indices[b * self.batch_size : (b + 1) * self.batch_size]
            aug, syn = aug_all[idx], syn_all[idx]
            batch = {
                "images": self.images[idx, aug],
                "text": self.text[idx],
                "syn_text": self.syn_text[idx, syn],
                "index": idx,
            }
            if self.image_emb is not None and self.text_emb is not None:
                batch["image_emb"] = self.image_emb[idx, aug]
                batch["text_emb"] = self.text_emb[idx, 0]
                batch["syn_text_emb"] = self.text_emb[idx, 1 + syn]
            self._position = b + 1
            yield batch
        self.epoch, self._position = epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batches_done": self._position,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "num_samples": self.num_samples,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key in ("seed", "batch_size", "world_size", "num_samples"):
            if state[key] != getattr(self, key):
                raise ValueError(f"source state has {key}={state[key]!r}, this source has {getattr(self, key)!r}")
        self.epoch, self._position = int(state["epoch"]), int(state["batches_done"])


def random_reinforced_source(
    num_samples: int,
    batch_size: int,
    image_size: int,
    num_teachers: int = 2,
    teacher_dim: int = 32,
    num_augs: int = 2,
    num_syn: int = 2,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> InMemoryReinforcedSource:
    """Random images, captions and unit-norm teacher slices (smoke tests, ``--fake-data``)."""
    g = torch.Generator().manual_seed(seed)

    def tokens(*shape: int) -> torch.Tensor:
        t = torch.randint(1, 49000, (*shape, 77), generator=g)
        t[..., 0] = 49406
        t[..., 20:] = 0
        t[..., 19] = 49407
        return t

    def teacher(*shape: int) -> torch.Tensor:
        e = F.normalize(torch.randn(*shape, num_teachers, teacher_dim, generator=g), dim=-1)
        return e.flatten(-2).half()

    images = torch.randint(0, 256, (num_samples, num_augs, 3, image_size, image_size), generator=g, dtype=torch.uint8)
    return InMemoryReinforcedSource(
        images,
        tokens(num_samples),
        tokens(num_samples, num_syn),
        teacher(num_samples, num_augs),
        teacher(num_samples, 1 + num_syn),
        batch_size=batch_size,
        seed=seed,
        rank=rank,
        world_size=world_size,
    )


def open_store_loader(
    store: str,
    batch_size: int,
    image_size: int,
    interpolation: str,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    loss_captions: str,
    mix_probability: float,
    seed: int,
    num_threads: int | None,
    image_dtype: str = "float32",
    pin_memory: bool = False,
    prefetch: int | None = None,
    caption_sets: str | None = None,
) -> Any:
    """A ``FastReinforcedLoader`` over a DR store, configured for the model's preprocessing
    (``pin_memory``: its recycled batch memory is page-locked once, for asynchronous copies;
    ``caption_sets``: a regex picking the synthetic caption sets, None for all)."""
    from mobileclip_fastload import FastReinforcedLoader  # imported lazily: only the store path needs the extension

    return FastReinforcedLoader(
        store,
        batch_size,
        image_size=image_size,
        interpolation=interpolation,
        mean=mean,
        std=std,
        image_dtype=image_dtype,
        seed=seed,
        shuffle=True,
        drop_last=True,  # equal per-rank batches: the local x global loss needs them
        caption_mode="mix" if loss_captions == "mix" else "both",
        mix_probability=mix_probability,
        num_threads=num_threads,
        pin_memory=pin_memory,
        prefetch=prefetch,
        caption_sets=caption_sets,
    )
