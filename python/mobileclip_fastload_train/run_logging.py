"""Where a run's records go besides ``metrics.jsonl``: TensorBoard and (optionally) Weights & Biases.

Each record the loop writes (a training step's losses, lr, logit scale, throughput, data wait;
or an evaluation's ``eval/...`` numbers) becomes one scalar per numeric field at the record's
step. W&B is imported only when asked and defaults to offline mode (``wandb sync`` uploads later).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

#: Record fields that are coordinates, not curves.
_NOT_SCALARS = ("step", "epoch")
WANDB_MODES = ("offline", "online", "disabled")


class RunLogger(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in record.items()
        if k not in _NOT_SCALARS and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _tag(key: str) -> str:
    # group the training curves under train/ as open_clip's trainer does; evaluations keep eval/
    return key if "/" in key else f"train/{key}"


class TensorBoardLogger:
    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` package

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, record: dict[str, Any]) -> None:
        for key, value in _scalars(record).items():
            self.writer.add_scalar(_tag(key), value, global_step=int(record["step"]))

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    def __init__(self, run_dir: str | os.PathLike[str], project: str, mode: str, config: dict[str, Any]) -> None:
        try:
            import wandb
        except ImportError:
            raise RuntimeError("--wandb needs the wandb package: pip install wandb") from None
        self.run = wandb.init(project=project, dir=str(run_dir), mode=mode, config=config)

    def log(self, record: dict[str, Any]) -> None:
        self.run.log({_tag(k): v for k, v in _scalars(record).items()}, step=int(record["step"]))

    def close(self) -> None:
        self.run.finish()


class Loggers:
    """All the requested loggers as one."""

    def __init__(self, loggers: list[RunLogger]) -> None:
        self.loggers = loggers

    def log(self, record: dict[str, Any]) -> None:
        for logger in self.loggers:
            logger.log(record)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def open_loggers(
    run_dir: str | os.PathLike[str] | None,
    tensorboard: bool,
    wandb_project: str | None,
    wandb_mode: str = "offline",
    config: dict[str, Any] | None = None,
) -> Loggers:
    """TensorBoard events under ``<run_dir>/tensorboard``; W&B files under ``<run_dir>/wandb``."""
    if (tensorboard or wandb_project) and run_dir is None:
        raise ValueError("TensorBoard / W&B logging needs an output directory")
    loggers: list[RunLogger] = []
    if tensorboard:
        loggers.append(TensorBoardLogger(Path(run_dir) / "tensorboard"))  # type: ignore[arg-type]
    if wandb_project:
        if wandb_mode not in WANDB_MODES:
            raise ValueError(f"wandb mode must be one of {WANDB_MODES}, got {wandb_mode!r}")
        loggers.append(WandbLogger(run_dir, wandb_project, wandb_mode, config or {}))  # type: ignore[arg-type]
    return Loggers(loggers)
