"""The student's view of a sample: its augmentations replayed by the loader's own
Rust replay (`_core.replay_augmentations`, bit-identical to the loader's pixels)."""

from __future__ import annotations

import numpy as np

from mobileclip_fastload._core import decode_aug_record, replay_augmentations


def replay_entries(aug: np.ndarray, which: list[int]) -> list[tuple | None]:
    """`replay_augmentations` entries for the records `which` of a sample's AUG_DTYPE array."""
    entries: list[tuple | None] = []
    for j in which:
        rec = decode_aug_record(aug[j].tobytes())
        entries.append(
            None
            if rec["is_null"]
            else (rec["top"], rec["left"], rec["height"], rec["width"], list(rec["ops"]), rec["hflip"])
        )
    return entries


def replay(store, i: int, which: list[int], image_size: int, interpolation: str) -> np.ndarray:
    """uint8 [len(which), image_size, image_size, 3]: augmentations `which` of sample i, as trained on."""
    entries = replay_entries(store.aug(i), which)
    return replay_augmentations(store.image(i).tobytes(), entries, image_size, interpolation)
