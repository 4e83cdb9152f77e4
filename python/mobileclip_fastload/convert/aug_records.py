"""Validated ``param_aug`` entries -> the store's J x 40-byte augmentation records."""

from __future__ import annotations

import numpy as np


def build_aug_records(entries: list, stored_size: tuple[int, int], orig_size: tuple[int, int]) -> np.ndarray:
    """Boxes rescaled from original to stored pixels by the store's own helper."""
    from mobileclip_fastload.store import aug_records_from_param_aug

    return aug_records_from_param_aug(entries, stored_size=stored_size, orig_size=orig_size)
