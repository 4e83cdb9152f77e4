"""A tqdm bar over input bytes (so MB/s and ETA are meaningful) with samples and shards alongside.

Shown only on a terminal: when stderr is not a TTY (logs, CI, pytest) it stays quiet.
"""

from __future__ import annotations

import os
import sys
from typing import Any


class Progress:
    def __init__(self, total_bytes: int, total_shards: int, enabled: bool = True, desc: str = "convert"):
        self.samples = 0
        self.shards = 0
        self.total_shards = total_shards
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total_bytes,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=desc,
                dynamic_ncols=True,
                smoothing=0.05,
            )
            self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            rate = self.samples / max(self.bar.format_dict.get("elapsed", 0) or 1e-9, 1e-9)
            self.bar.set_postfix_str(
                f"{self.samples} samples ({rate:.0f}/s), shards {self.shards}/{self.total_shards}", refresh=False
            )

    def advance(self, nbytes: int, nsamples: int) -> None:
        self.samples += nsamples
        if self.bar is not None:
            self._postfix()
            self.bar.update(nbytes)

    def shard_done(self) -> None:
        self.shards += 1
        if self.bar is not None:
            self._postfix()
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def input_bytes(path: str | None) -> int:
    """A task input's size for the progress total; 0 when there is none or it cannot be read."""
    if path is None:
        return 0
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class TaskProgress:
    """``run_tasks``'s ``on_progress`` / ``on_done`` over a ``Progress`` bar: each task's bytes are clamped
    to what was planned for it (a finished task tops its share up), and the reports are kept by task index."""

    def __init__(self, planned: dict[int, int], bar: Progress):
        self.planned, self.bar = planned, bar
        self.reported = dict.fromkeys(planned, 0)
        self.reports: dict[int, Any] = {}

    def on_progress(self, index: int, nbytes: int, nsamples: int) -> None:
        nbytes = max(0, min(nbytes, self.planned[index] - self.reported[index]))
        self.reported[index] += nbytes
        self.bar.advance(nbytes, nsamples)

    def on_done(self, task, report) -> None:
        self.reports[task.index] = report
        self.on_progress(task.index, self.planned[task.index] - self.reported[task.index], 0)
        self.bar.shard_done()
