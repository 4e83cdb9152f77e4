"""Validated ``param_aug`` entries -> the store's J augmentation records (AUG_DTYPE)."""

from __future__ import annotations

import numpy as np


def build_aug_records(entries: list, stored_size: tuple[int, int], orig_size: tuple[int, int]) -> np.ndarray:
    """Boxes mapped from original to stored pixels by the store's own rule (edges, round half up)."""
    from mobileclip_fastload.store import aug_records

    records, _ = aug_records(
        entries, width=stored_size[0], height=stored_size[1], orig_width=orig_size[0], orig_height=orig_size[1]
    )
    return records
