"""`FastReinforcedLoader` as the training data of OpenCLIP's loop (``open_clip_train``
with Apple's ml-mobileclip DR patch).

That loop reads ``data["train"]``, a ``DataInfo``: it calls ``set_epoch(epoch)``
before each epoch, reads ``dataloader.num_batches`` and ``dataloader.num_samples``,
iterates ``dataloader`` and indexes each batch as ``batch[:2]`` (images, text),
``batch[2]``, ``batch[3]``, ``batch[5]`` (teacher rows, float32 in Apple's
pipeline) and ``batch[4]`` (synthetic text). ``dr_data_info`` returns such an
object whose ``set_epoch`` reaches the loader (OpenCLIP's own only reaches a
``DistributedSampler`` or a worker-shared epoch), so a run resumed at epoch e
replays epoch e's permutation and augmentations. In ``open_clip_train/data.py``'s
``get_data``::

    from mobileclip_fastload.openclip_compat import dr_data_info, open_clip_dr_loader

    data["train"] = open_clip_train_data(args, preprocess_train)

which honours OpenCLIP's ``--train-num-samples`` (samples per epoch, counted and rounded
as OpenCLIP's webdataset pipeline does) and refuses ``--dataset-resampled`` and
``--train-data-upsampling-factors`` (see ``dr_data_info``) rather than ignore them.
``dr_data_info(open_clip_dr_loader(...), train_num_samples=...)`` does the same
without the ``args`` namespace.

(The module is not called ``open_clip``: a user's ``from mobileclip_fastload import
open_clip`` would rebind the real package's name in the very files that use it,
and running a file of this package as a script would put it first on ``sys.path``.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mobileclip_fastload.loader import FastReinforcedLoader, ReinforcedBatch

#: Why ``--dataset-resampled`` is refused (the one message for both entry points).
RESAMPLED_REFUSAL = (
    "--dataset-resampled cannot be honoured: OpenCLIP's resampled pipeline draws webdataset *shards* with "
    "replacement per dataloader worker (ResampledShards2), which this loader's seeded permutations of samples "
    "cannot reproduce. Drop the flag: with --train-num-samples each epoch then takes the next samples of the "
    "loader's stream of epochs (every sample once per pass over the store, a new permutation per pass)"
)


class FixedSizeEpochs:
    """OpenCLIP's ``--train-num-samples`` over a loader: epoch ``e`` of OpenCLIP's loop is
    batches ``[e * num_batches, (e + 1) * num_batches)`` of the loader's stream, its own
    epochs 0, 1, 2, ... one after another (each a new permutation; every sample once per
    pass over the store). An OpenCLIP epoch may end inside a loader epoch or span several;
    ``set_epoch(e)`` puts the loader where epoch ``e`` starts, so a resumed run gets exactly
    the batches the uninterrupted run would have had. Each batch's ``epoch`` is the loader's."""

    def __init__(self, loader: FastReinforcedLoader, num_batches: int, num_samples: int) -> None:
        if len(loader) == 0:
            raise ValueError("the loader delivers no batch per epoch (store smaller than one global batch?)")
        if num_batches < 1:
            raise ValueError(f"--train-num-samples gives {num_batches} batches per epoch; it needs at least one")
        self.loader = loader
        self.num_batches = num_batches
        self.num_samples = num_samples  # all ranks, as OpenCLIP's dataloader.num_samples
        self.epoch = 0  # OpenCLIP's epoch iterated next

    def __len__(self) -> int:
        return self.num_batches

    @property
    def batch_size(self) -> int:
        return self.loader.batch_size

    @property
    def image_dtype(self) -> str:
        return self.loader.image_dtype

    @property
    def embedding_output_dtype(self) -> str:
        return self.loader.embedding_output_dtype

    def set_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[ReinforcedBatch]:
        epoch, per_pass = self.epoch, len(self.loader)
        loader_epoch, position = divmod(epoch * self.num_batches, per_pass)
        state = self.loader.state_dict()
        state.update(epoch=loader_epoch, batches_done=position)
        self.loader.load_state_dict(state)
        delivered = 0
        while delivered < self.num_batches:
            passes = iter(self.loader)  # runs to the end of the loader's epoch, then it stands at the next
            try:
                for batch in passes:
                    yield batch
                    delivered += 1
                    if delivered == self.num_batches:
                        break
            finally:
                passes.close()
        self.epoch = epoch + 1


class LoaderEpoch:
    """OpenCLIP's ``SharedEpoch`` interface (``set_value`` / ``get_value``) backed by the
    loader: ``set_value(e)`` selects epoch e, from its first batch. A real
    ``open_clip_train.data.DataInfo(dataloader=loader, shared_epoch=LoaderEpoch(loader))``
    therefore works too."""

    def __init__(self, loader: FastReinforcedLoader) -> None:
        self.loader = loader

    def set_value(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def get_value(self) -> int:
        return self.loader.epoch


@dataclass
class DRDataInfo:
    """The fields and ``set_epoch`` of ``open_clip_train.data.DataInfo``."""

    dataloader: FastReinforcedLoader | FixedSizeEpochs
    sampler: None = None  # the loader shards by rank itself
    shared_epoch: LoaderEpoch = field(init=False)

    def __post_init__(self) -> None:
        self.shared_epoch = LoaderEpoch(self.dataloader)

    def set_epoch(self, epoch: int) -> None:
        self.shared_epoch.set_value(epoch)


def open_clip_epoch_size(train_num_samples: int, batch_size: int, world_size: int, workers: int) -> tuple[int, int]:
    """``(num_batches per rank, num_samples)`` of an epoch as OpenCLIP's webdataset pipeline sets them
    for ``--train-num-samples`` (``get_wds_dataset``): whole global batches, rounded up, and a
    multiple of ``--workers`` (its per-worker epochs); this is what its LR schedule counts."""
    if train_num_samples < 1:
        raise ValueError(f"--train-num-samples must be >= 1, got {train_num_samples}")
    global_batch = batch_size * world_size
    workers = max(1, workers)
    num_batches = math.ceil(math.ceil(train_num_samples / global_batch) / workers) * workers
    return num_batches, num_batches * global_batch


def dr_data_info(
    loader: FastReinforcedLoader,
    train_num_samples: int | None = None,
    dataset_resampled: bool = False,
    workers: int = 1,
) -> DRDataInfo:
    """Wrap ``loader`` for OpenCLIP's loop; refuses outputs that loop would misread.

    ``train_num_samples`` (OpenCLIP's ``--train-num-samples``; ``None``: an epoch is one pass
    over the store) sets the samples per epoch, rounded as OpenCLIP rounds them with
    ``workers`` (its ``--workers``), see ``FixedSizeEpochs``. ``dataset_resampled=True``
    (``--dataset-resampled``) is refused: see ``RESAMPLED_REFUSAL``."""
    if dataset_resampled:
        raise ValueError(RESAMPLED_REFUSAL)
    if loader.image_dtype != "float32":
        raise ValueError(
            f"OpenCLIP's loop feeds batch[0] to the model as normalised float images, but this loader delivers "
            f"image_dtype={loader.image_dtype!r} (raw pixels); build it with image_dtype='float32' "
            "(open_clip_dr_loader does)"
        )
    if loader.embedding_output_dtype != "float32":
        raise ValueError(
            f"Apple's DR pipeline hands the loss float32 teacher rows, but this loader delivers "
            f"embedding_output_dtype={loader.embedding_output_dtype!r}; build it with embedding_output_dtype='float32' "
            "(open_clip_dr_loader does)"
        )
    if train_num_samples is None:
        return DRDataInfo(loader)
    state = loader.state_dict()
    num_batches, num_samples = open_clip_epoch_size(
        train_num_samples, state["batch_size"], state["world_size"], workers
    )
    return DRDataInfo(FixedSizeEpochs(loader, num_batches, num_samples))


def open_clip_train_data(args: Any, preprocess_train: Any = None, **loader_kwargs: Any) -> DRDataInfo:
    """``data["train"]`` for OpenCLIP's ``get_data`` from its parsed ``args``: the store is
    ``--train-data``; ``--batch-size``, ``--workers`` (decode threads), ``--seed``, the rank and
    world size, ``--train-num-samples``, Apple's ``--dataset-reinforcement-mix-synthetic``
    (with its ratio) and ``--dataset-reinforcement-syn-text-key-regex`` (the loader's
    ``caption_sets``: the sets whose names it matches, as Apple matches syn.json keys) are
    honoured; ``--dataset-resampled``, ``--train-data-upsampling-factors`` (which OpenCLIP
    allows only with it), ``--dataset-reinforcement-sample-sequential`` and
    ``--dataset-reinforcement-filter-image-size`` are refused with an error naming the flag.
    ``loader_kwargs`` go to ``open_clip_dr_loader``."""
    if getattr(args, "dataset_resampled", False):
        raise ValueError(RESAMPLED_REFUSAL)
    if getattr(args, "train_data_upsampling_factors", None) is not None:
        raise ValueError(
            "--train-data-upsampling-factors cannot be honoured: it weights the shards that "
            "--dataset-resampled draws with replacement, which this loader does not do (see "
            "--dataset-resampled's message); drop both flags"
        )
    for flag in ("dataset_reinforcement_sample_sequential", "dataset_reinforcement_filter_image_size"):
        if getattr(args, flag, None) not in (None, False):
            raise ValueError(
                f"--{flag.replace('_', '-')} cannot be honoured: the loader draws each sample's "
                "augmentation and captions from its seed and keeps every sample; drop the flag"
            )
    workers = int(getattr(args, "workers", 1))
    options: dict[str, Any] = dict(num_threads=max(1, workers), seed=int(getattr(args, "seed", 0)))
    if getattr(args, "dataset_reinforcement_mix_synthetic", False):
        # Apple's loop then takes batch[1] as the only caption: synthetic with this probability.
        options.update(caption_mode="mix", mix_probability=float(args.dataset_reinforcement_mix_synthetic_ratio))
    regex = getattr(args, "dataset_reinforcement_syn_text_key_regex", None)
    if regex is not None:
        # the caption sets Apple's loader would draw from (its re.match on syn.json keys, here the store's set names)
        options.update(caption_sets=regex)
    if getattr(args, "rank", None) is not None and getattr(args, "world_size", None) is not None:
        options.update(rank=int(args.rank), world_size=int(args.world_size))
    options.update(loader_kwargs)
    loader = open_clip_dr_loader(args.train_data, int(args.batch_size), preprocess_train, **options)
    return dr_data_info(loader, getattr(args, "train_num_samples", None), workers=workers)


def loader_options_from_transform(preprocess_train: Any) -> dict[str, Any]:
    """``image_size``, ``interpolation``, ``mean`` and ``std`` of OpenCLIP's training transform,
    taken where Apple's DR patch takes them: its ``RandomResizedCrop`` (size, interpolation)
    and its ``Normalize`` (mean, std)."""
    from torchvision.transforms import Normalize, RandomResizedCrop

    found: dict[str, Any] = {}
    for t in getattr(preprocess_train, "transforms", ()):
        if isinstance(t, RandomResizedCrop):
            height, width = t.size
            if height != width:
                raise ValueError(f"the loader replays square images; the training transform crops to {t.size}")
            found.update(image_size=int(height), interpolation=t.interpolation.value)
        elif isinstance(t, Normalize):
            found.update(mean=tuple(float(v) for v in t.mean), std=tuple(float(v) for v in t.std))
    missing = {"image_size", "mean"} - found.keys()
    if missing:
        raise ValueError(
            f"no {' or '.join(sorted('RandomResizedCrop' if m == 'image_size' else 'Normalize' for m in missing))} "
            f"in the training transform {preprocess_train!r}"
        )
    return found


def open_clip_dr_loader(
    store: str | os.PathLike[str],
    batch_size: int,
    preprocess_train: Any = None,
    **loader_kwargs: Any,
) -> FastReinforcedLoader:
    """A ``FastReinforcedLoader`` set up as OpenCLIP's DR pipeline delivers: float32 images
    and teacher rows, equal batches on every rank (``drop_last``), and the image size,
    interpolation, mean and std of ``preprocess_train`` when given. ``loader_kwargs``
    (``num_threads``, ``seed``, ``caption_mode``, ``pin_memory``, ...) override these.

    With ``pin_memory=True`` the loop's ``images.to(device, non_blocking=True)`` copies straight
    from the loader's page-locked memory, and dropping the batch right after is safe: the loader
    recycles a batch's memory only once the copies queued before the next batch was asked for
    have run (``FastReinforcedLoader``'s ``pin_memory``)."""
    options: dict[str, Any] = dict(image_dtype="float32", embedding_output_dtype="float32", drop_last=True)
    if preprocess_train is not None:
        options.update(loader_options_from_transform(preprocess_train))
    options.update(loader_kwargs)
    return FastReinforcedLoader(store, batch_size, **options)
