"""The reference replay of one DataCompDR augmentation, with the real Pillow and
torchvision functions (the pipeline docs/REPLAY.md states). The Rust path
(``_core.replay_augmentation`` and the loader) must match it bit for bit; tests
and benchmarks compare against it.

Order: ``Image.open(...).convert("RGB")`` (alpha dropped, EXIF orientation
ignored; identical to webdataset's ``pilrgba`` followed by ``convert("RGB")``),
``F.resized_crop`` (PIL crop with black padding, then ``resize``), optional
``F.hflip``, then the RandAugment ops in stored order through torchvision's own
``autoaugment._apply_op`` with NEAREST interpolation and no fill.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F
from torchvision.transforms.autoaugment import _apply_op

from mobileclip_fastload._core import AUG_OP_NAMES, decode_aug_record, parse_param_aug
from mobileclip_fastload.loader import TRAINING_INTERPOLATION


@dataclass(frozen=True)
class AugParams:
    """One augmentation entry: crop box in stored-image pixels, ops, flags."""

    top: int = 0
    left: int = 0
    height: int = 0
    width: int = 0
    ops: tuple[tuple[int, float], ...] = field(default_factory=tuple)
    is_null: bool = False
    hflip: bool = False


def parse_aug(aug: Any) -> AugParams:
    """Accept an :class:`AugParams`, a 40-byte record (rust/src/aug/record.rs), an
    upstream ``param_aug`` entry ``[[top, left, h, w], [[op, m], ...]]`` or
    ``None`` (null entry), or a mapping with the AugParams field names."""
    if isinstance(aug, AugParams):
        return aug
    if aug is None:
        return AugParams(is_null=True)
    if isinstance(aug, np.void):  # one element of a store's AUG_DTYPE array
        aug = aug.tobytes()
    if isinstance(aug, (bytes, bytearray, memoryview)):  # decoded and validated by the store's own code
        return AugParams(**decode_aug_record(bytes(aug)))
    if isinstance(aug, Mapping):
        return AugParams(
            top=int(aug.get("top", 0)),
            left=int(aug.get("left", 0)),
            height=int(aug.get("height", 0)),
            width=int(aug.get("width", 0)),
            ops=tuple((int(o), float(m)) for o, m in aug.get("ops", ())),
            is_null=bool(aug.get("is_null", False)),
            hflip=bool(aug.get("hflip", False)),
        )
    if isinstance(aug, Sequence) and len(aug) == 2:  # checked by the store's own entry rule
        ((box, ops),) = parse_param_aug([aug])
        return AugParams(*box, tuple((o, m) for o, m in ops))
    raise TypeError(f"cannot interpret {type(aug).__name__} as an augmentation entry")


def _interpolation(interpolation: Any) -> InterpolationMode:
    if isinstance(interpolation, InterpolationMode):
        return interpolation
    return InterpolationMode(str(interpolation).lower())


def decode_reference(image_bytes: bytes) -> Image.Image:
    """``Image.open(...).convert("RGB")``."""
    with Image.open(io.BytesIO(image_bytes)) as im:
        return im.convert("RGB")


def reference_replay(
    image_bytes: bytes, aug_record_or_params: Any, size: int, interpolation: Any = TRAINING_INTERPOLATION
) -> np.ndarray:
    """Replay one augmentation with Pillow + torchvision; returns uint8 [size, size, 3]."""
    aug = parse_aug(aug_record_or_params)
    img = decode_reference(image_bytes)
    if aug.is_null:
        top, left, height, width, ops = 0, 0, img.height, img.width, ()
    else:
        top, left, height, width, ops = aug.top, aug.left, aug.height, aug.width, aug.ops
    img = F.resized_crop(img, top, left, height, width, [size, size], _interpolation(interpolation))
    if aug.hflip:
        img = F.hflip(img)
    for op, magnitude in ops:
        img = _apply_op(img, AUG_OP_NAMES[op], magnitude, interpolation=InterpolationMode.NEAREST, fill=None)
    return np.array(img, dtype=np.uint8)
