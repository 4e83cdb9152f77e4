"""Build AUG_DTYPE records from DataCompDR `param_aug` entries.

An upstream entry is `[[i, j, h, w], [[op, m], [op, m]]]` (RandomResizedCrop box
top, left, height, width in pixels of the *original* image, then the RandAugment
ops) or `null`. The store keeps boxes in pixels of the *stored* image.

Rescaling rule (original -> stored size): the box's edges are mapped, not its
size: with sx = W/OW, sy = H/OH,
    left' = round_half_up(left * sx), right' = round_half_up((left + width) * sx)
    width' = max(1, right' - left')            (same for top/height with sy)
computed in exact integer arithmetic, round_half_up(a/b) = floor((2a + b) / 2b).
Mapping edges keeps a whole-image box whole and adjacent boxes adjacent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mobileclip_fastload.store.sample import AUG_DTYPE

AUG_FLAG_NULL = 1
AUG_FLAG_HFLIP = 2
NUM_OPS = 14  # RandAugment op indices 0..13 (torchvision order)
MAX_OPS_PER_ENTRY = 2


def _round_ratio(num: int, den: int) -> int:
    """round_half_up(num / den) for den > 0, exact."""
    return (2 * num + den) // (2 * den)


def rescale_box(box: Sequence[int], orig_size: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Map (top, left, height, width) from an `orig_size` image to a `size` image ((width, height) pairs)."""
    top, left, height, width = (int(v) for v in box)
    (ow, oh), (w, h) = orig_size, size
    if min(ow, oh, w, h) < 1:
        raise ValueError(f"cannot rescale a box between sizes {orig_size} and {size}")
    new_left, new_right = _round_ratio(left * w, ow), _round_ratio((left + width) * w, ow)
    new_top, new_bottom = _round_ratio(top * h, oh), _round_ratio((top + height) * h, oh)
    return new_top, new_left, max(1, new_bottom - new_top), max(1, new_right - new_left)


def aug_record(
    box: Sequence[int],
    ops: Sequence[tuple[int, float]] = (),
    *,
    null: bool = False,
    hflip: bool = False,
) -> np.ndarray:
    """One AUG_DTYPE record (a 0-d array) from a box (top, left, height, width) and up to 2 (op, magnitude)."""
    top, left, height, width = (int(v) for v in box)
    if height < 1 or width < 1:
        raise ValueError(f"crop box {tuple(box)} must have positive height and width")
    if not all(-(2**31) <= v < 2**31 for v in (top, left, height, width)):
        raise ValueError(f"crop box {tuple(box)} does not fit int32")
    if len(ops) > MAX_OPS_PER_ENTRY:
        raise ValueError(f"at most {MAX_OPS_PER_ENTRY} RandAugment ops per entry, got {len(ops)}")
    rec = np.zeros((), dtype=AUG_DTYPE)
    rec["top"], rec["left"], rec["height"], rec["width"] = top, left, height, width
    for k, (op, m) in enumerate(ops):
        op, m = int(op), float(m)
        if not 0 <= op < NUM_OPS:
            raise ValueError(f"RandAugment op index {op} is not in 0..{NUM_OPS - 1}")
        if not math.isfinite(m):
            raise ValueError(f"RandAugment magnitude {m} is not finite")
        rec[f"op{k}"], rec[f"m{k}"] = op, m
    rec["n_ops"] = len(ops)
    rec["flags"] = (AUG_FLAG_NULL if null else 0) | (AUG_FLAG_HFLIP if hflip else 0)
    return rec


def null_record(width: int, height: int) -> np.ndarray:
    """The record for an upstream `null`: the whole stored image, no ops, flag bit 0."""
    return aug_record((0, 0, height, width), (), null=True)


def _parse_entry(entry: Any, n: int) -> tuple[list[int], list[tuple[int, float]]]:
    try:
        box, ops = entry
        box = [int(v) for v in box]
        if len(box) != 4:
            raise ValueError
        ops = [(int(op), float(m)) for op, m in ops]
    except (TypeError, ValueError):
        raise ValueError(f"param_aug[{n}] = {entry!r} is not [[i, j, h, w], [[op, m], ...]] or null") from None
    return box, ops


def aug_records(
    param_aug: Sequence[Any] | str,
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
    """
    if isinstance(param_aug, (str, bytes)):
        param_aug = json.loads(param_aug)
    ow = width if orig_width is None else int(orig_width)
    oh = height if orig_height is None else int(orig_height)
    rescale = (ow, oh) != (width, height)
    out = np.zeros(len(param_aug), dtype=AUG_DTYPE)
    for n, entry in enumerate(param_aug):
        if entry is None:
            out[n] = null_record(width, height)
            continue
        box, ops = _parse_entry(entry, n)
        if rescale:
            box = rescale_box(box, (ow, oh), (width, height))
        try:
            out[n] = aug_record(box, ops)
        except ValueError as e:
            raise ValueError(f"param_aug[{n}]: {e}") from None
    return out, rescale


def check_aug(aug: np.ndarray, j: int) -> np.ndarray:
    """Validate an AUG_DTYPE [J] array as the Rust reader will (raises ValueError)."""
    aug = np.asarray(aug)
    if aug.dtype != AUG_DTYPE:
        raise ValueError(f"aug must have dtype AUG_DTYPE, got {aug.dtype}")
    if aug.shape != (j,):
        raise ValueError(f"aug must have shape ({j},), got {aug.shape}")
    bad = (
        (aug["n_ops"] > MAX_OPS_PER_ENTRY)
        | (aug["op0"] >= NUM_OPS)
        | (aug["op1"] >= NUM_OPS)
        | ((aug["flags"] & ~np.uint8(AUG_FLAG_NULL | AUG_FLAG_HFLIP)) != 0)
        | ~np.isfinite(aug["m0"])
        | ~np.isfinite(aug["m1"])
        | (aug["height"] <= 0)
        | (aug["width"] <= 0)
        | (aug["pad"] != 0).any(axis=-1)
    )
    if bad.any():
        n = int(np.flatnonzero(bad)[0])
        raise ValueError(f"aug[{n}] = {aug[n]} is not a valid augmentation record")
    return aug
