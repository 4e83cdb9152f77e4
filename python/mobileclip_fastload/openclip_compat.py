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

    data["train"] = dr_data_info(open_clip_dr_loader(
        args.train_data, args.batch_size, preprocess_train, num_threads=args.workers, seed=args.seed))

(The module is not called ``open_clip``: a user's ``from mobileclip_fastload import
open_clip`` would rebind the real package's name in the very files that use it,
and running a file of this package as a script would put it first on ``sys.path``.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from mobileclip_fastload.loader import FastReinforcedLoader


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

    dataloader: FastReinforcedLoader
    sampler: None = None  # the loader shards by rank itself
    shared_epoch: LoaderEpoch = field(init=False)

    def __post_init__(self) -> None:
        self.shared_epoch = LoaderEpoch(self.dataloader)

    def set_epoch(self, epoch: int) -> None:
        self.shared_epoch.set_value(epoch)


def dr_data_info(loader: FastReinforcedLoader) -> DRDataInfo:
    """Wrap ``loader`` for OpenCLIP's loop; refuses outputs that loop would misread."""
    if loader.output != "float32":
        raise ValueError(
            f"OpenCLIP's loop feeds batch[0] to the model as normalised float images, but this loader delivers "
            f"output={loader.output!r} (raw pixels); build it with output='float32' (open_clip_dr_loader does)"
        )
    if loader.embedding_dtype != "float32":
        raise ValueError(
            f"Apple's DR pipeline hands the loss float32 teacher rows, but this loader delivers "
            f"embedding_dtype={loader.embedding_dtype!r}; build it with embedding_dtype='float32' "
            "(open_clip_dr_loader does)"
        )
    return DRDataInfo(loader)


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
    options: dict[str, Any] = dict(output="float32", embedding_dtype="float32", drop_last=True)
    if preprocess_train is not None:
        options.update(loader_options_from_transform(preprocess_train))
    options.update(loader_kwargs)
    return FastReinforcedLoader(store, batch_size, **options)
