"""Drawing augmentation parameters exactly as torchvision draws them.

One entry is DataCompDR's ``[[i, j, h, w], [[op, m], [op, m]]]``:
``RandomResizedCrop.get_params`` (scale (0.08, 1), ratio (3/4, 4/3)) on the image,
then ``RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31)`` on the
``aug_size`` crop (224 px in DataCompDR; translate magnitudes are pixels of it).

The draws use an explicit ``torch.Generator`` with torchvision's own calls in
torchvision's order, so given the same generator state they equal
``RandomResizedCrop.get_params`` and ``RandAugment.forward`` run on torch's
global RNG (tests/test_reinforce_augmentation.py checks it against torchvision
itself), without touching the global RNG (safe in threads).

Reinforcement seeds each entry alone from ``(seed, uid, j)`` (``entry_seed``):
any one augmentation of any one sample is reproducible without the others.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from typing import TYPE_CHECKING

from mobileclip_fastload._core import AUG_OP_NAMES

if TYPE_CHECKING:
    import torch

RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3.0 / 4.0, 4.0 / 3.0)
RANDAUGMENT_NUM_OPS = 2
RANDAUGMENT_MAGNITUDE = 9
RANDAUGMENT_BINS = 31
#: DataCompDR draws RandAugment on the teacher's 224 px crop.
DEFAULT_AUG_SIZE = 224


def entry_seed(seed: int, uid: str, j: int) -> int:
    """A 63-bit torch seed for augmentation ``j`` of sample ``uid`` (counter-based: no stream state)."""
    digest = hashlib.blake2b(f"{int(seed)}\x00{uid}\x00{int(j)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def torch_generator(seed: int) -> torch.Generator:
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return g


def rrc_params(g: torch.Generator, width: int, height: int) -> tuple[int, int, int, int]:
    """``RandomResizedCrop.get_params(img, scale=(0.08, 1), ratio=(3/4, 4/3))`` drawn from ``g``: (i, j, h, w)."""
    import torch

    area = height * width
    log_ratio = _log_ratio()
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(RRC_SCALE[0], RRC_SCALE[1], generator=g).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=g)).item()
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,), generator=g).item()
            j = torch.randint(0, width - w + 1, size=(1,), generator=g).item()
            return int(i), int(j), h, w
    in_ratio = float(width) / float(height)  # torchvision's fallback: central crop
    if in_ratio < min(RRC_RATIO):
        w = width
        h = int(round(w / min(RRC_RATIO)))
    elif in_ratio > max(RRC_RATIO):
        h = height
        w = int(round(h * max(RRC_RATIO)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


@lru_cache(maxsize=1)
def _log_ratio():
    """torchvision's ``torch.log(torch.tensor(ratio))`` (float32), made once; never mutated."""
    import torch

    return torch.log(torch.tensor(RRC_RATIO))


@lru_cache(maxsize=8)
def _op_table(aug_size: int) -> tuple[tuple[float, bool], ...]:
    """(magnitude at bin 9, signed) per op, from torchvision's own augmentation space."""
    from torchvision.transforms import RandAugment

    ra = RandAugment(num_ops=RANDAUGMENT_NUM_OPS, magnitude=RANDAUGMENT_MAGNITUDE, num_magnitude_bins=RANDAUGMENT_BINS)
    space = ra._augmentation_space(ra.num_magnitude_bins, (aug_size, aug_size))
    if tuple(space) != AUG_OP_NAMES:
        raise RuntimeError(f"torchvision's RandAugment ops changed: {tuple(space)}")
    return tuple((float(m[ra.magnitude].item()) if m.ndim > 0 else 0.0, bool(signed)) for m, signed in space.values())


def randaugment_ops(g: torch.Generator, aug_size: int = DEFAULT_AUG_SIZE) -> list[list]:
    """``RandAugment.forward``'s draws from ``g``: ``[[op_index, signed_magnitude], ...]``."""
    import torch

    table = _op_table(aug_size)
    ops = []
    for _ in range(RANDAUGMENT_NUM_OPS):
        op_index = int(torch.randint(len(table), (1,), generator=g).item())
        magnitude, signed = table[op_index]
        if signed and torch.randint(2, (1,), generator=g):
            magnitude *= -1.0
        ops.append([op_index, magnitude])
    return ops


def draw_entry(g: torch.Generator, width: int, height: int, aug_size: int = DEFAULT_AUG_SIZE) -> list:
    """One DataCompDR ``param_aug`` entry: the crop box then the RandAugment ops, in torchvision's order."""
    i, j, h, w = rrc_params(g, width, height)
    return [[i, j, h, w], randaugment_ops(g, aug_size)]


def draw_augmentations(
    seed: int, uid: str, count: int, width: int, height: int, aug_size: int = DEFAULT_AUG_SIZE
) -> list:
    """``count`` entries for sample ``uid`` of a ``width`` x ``height`` image, entry j seeded by ``entry_seed``."""
    if width < 1 or height < 1:
        raise ValueError(f"image size {width}x{height} is empty")
    return [draw_entry(torch_generator(entry_seed(seed, uid, j)), width, height, aug_size) for j in range(count)]
