"""Training checkpoints: everything needed to continue a run exactly.

A checkpoint holds the model, optimiser, step, epoch, every rank's loader
state and the RNG state. It is written through the project's one atomic writer
(``mobileclip_fastload.store.atomic.publishing``: temp file, fsync, rename, directory
fsync), so a run killed mid-write, or a machine that loses power, leaves the
previous checkpoint intact. Loading uses
``weights_only=True``: only tensors and plain containers are accepted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from mobileclip_fastload.store.atomic import publishing

LATEST = "latest.pt"


def save_checkpoint(directory: str | os.PathLike[str], state: dict[str, Any], name: str = LATEST) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with publishing(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def find_latest(directory: str | os.PathLike[str]) -> Path | None:
    path = Path(directory) / LATEST
    return path if path.is_file() else None
