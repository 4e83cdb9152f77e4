"""Augmentation records (AUG_DTYPE) from DataCompDR `param_aug` entries.

The record, its validity rule, the box rescaling rule and the parsing of
upstream entries live in Rust (rust/src/aug/); these are numpy-facing wrappers.

An upstream entry is `[[i, j, h, w], [[op, m], [op, m]]]` (RandomResizedCrop box
top, left, height, width in pixels of the *original* image, then the RandAugment
ops) or `null`. Box values and op indices must be integers (`5.0` counts, `True`
does not), magnitudes finite. The store keeps boxes in pixels of the *stored* image.

Rescaling rule (original -> stored size): the box's edges are mapped, not its
size: with sx = W/OW, sy = H/OH,
    left' = round_half_up(left * sx), right' = round_half_up((left + width) * sx)
    width' = max(1, right' - left')            (same for top/height with sy)
computed in exact integer arithmetic, round_half_up(a/b) = floor((2a + b) / 2b).
Mapping edges keeps a whole-image box whole and adjacent boxes adjacent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mobileclip_fastload import _core
from mobileclip_fastload._core import AUG_FLAG_HFLIP, AUG_FLAG_NULL, AUG_NUM_OPS, parse_param_aug, rescale_box
from mobileclip_fastload.store.sample import AUG_DTYPE

#: RandAugment op indices are 0..AUG_NUM_OPS-1 (torchvision order); an entry holds at most MAX_OPS_PER_ENTRY.
MAX_OPS_PER_ENTRY = _core.AUG_MAX_OPS_PER_ENTRY

__all__ = [
    "AUG_FLAG_HFLIP",
    "AUG_FLAG_NULL",
    "AUG_NUM_OPS",
    "MAX_OPS_PER_ENTRY",
    "aug_record",
    "aug_records",
    "check_aug",
    "null_record",
    "parse_param_aug",
    "rescale_box",
]


def aug_record(
    box: Sequence[int],
    ops: Sequence[tuple[int, float]] = (),
    *,
    null: bool = False,
    hflip: bool = False,
) -> np.ndarray:
    """One AUG_DTYPE record (a 0-d array) from a box (top, left, height, width) and up to 2 (op, magnitude)."""
    return _core.encode_aug_record(box, ops, null=null, hflip=hflip).view(AUG_DTYPE).reshape(())


def null_record(width: int, height: int) -> np.ndarray:
    """The record for an upstream `null`: the whole stored image, no ops, flag bit 0."""
    return aug_record((0, 0, height, width), (), null=True)


def aug_records(
    param_aug: Sequence[Any] | str | bytes,
    *,
    width: int,
    height: int,
    orig_width: int | None = None,
    orig_height: int | None = None,
) -> tuple[np.ndarray, bool]:
    """Records for a whole `param_aug` list (or its JSON text).

    `width`/`height`: the stored image; `orig_width`/`orig_height`: the image the
    boxes were drawn on (default: the stored size, no rescaling). Returns the
    AUG_DTYPE [J] array and whether boxes were rescaled (set FLAG_BOXES_RESCALED).
    Raises ValueError naming the bad entry (`param_aug[n]: ...`).
    """
    raw, rescaled = _core.encode_aug_records(
        param_aug, width=width, height=height, orig_width=orig_width, orig_height=orig_height
    )
    return raw.view(AUG_DTYPE), rescaled


def check_aug(aug: np.ndarray, j: int) -> np.ndarray:
    """Validate an AUG_DTYPE [J] array by the reader's own rule (raises ValueError)."""
    aug = np.asarray(aug)
    if aug.dtype != AUG_DTYPE:
        raise ValueError(f"aug must have dtype AUG_DTYPE, got {aug.dtype}")
    if aug.shape != (j,):
        raise ValueError(f"aug must have shape ({j},), got {aug.shape}")
    _core.check_aug_records(aug.tobytes())
    return aug
