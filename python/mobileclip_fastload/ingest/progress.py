"""A tqdm bar over input bytes (so MB/s and ETA are meaningful) with samples and shards alongside.

Shown only on a terminal: when stderr is not a TTY (logs, CI, pytest) it stays quiet.
"""

from __future__ import annotations

import sys


class Progress:
    def __init__(self, total_bytes: int, total_shards: int, enabled: bool = True, desc: str = "convert"):
        self.samples = 0
        self.shards = 0
        self.total_shards = total_shards
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024,
                desc=desc, dynamic_ncols=True, smoothing=0.05,
            )
            self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            rate = self.samples / max(self.bar.format_dict.get("elapsed", 0) or 1e-9, 1e-9)
            self.bar.set_postfix_str(f"{self.samples} samples ({rate:.0f}/s), shards {self.shards}/{self.total_shards}", refresh=False)

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
