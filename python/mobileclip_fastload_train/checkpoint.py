"""Training checkpoints: everything needed to continue a run exactly.

A checkpoint holds the model, optimiser, step, epoch, every rank's loader
state and the RNG state. It is written to a temporary file and renamed, so a
run killed mid-write leaves the previous checkpoint intact. Loading uses
``weights_only=True``: only tensors and plain containers are accepted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

LATEST = "latest.pt"


def save_checkpoint(directory: str | os.PathLike[str], state: dict[str, Any], name: str = LATEST) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    tmp = directory / f".{name}.tmp-{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def find_latest(directory: str | os.PathLike[str]) -> Path | None:
    path = Path(directory) / LATEST
    return path if path.is_file() else None
