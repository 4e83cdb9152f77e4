"""How much the stored embedding dtype changes the teacher embeddings.

For every (row, teacher) D-slice, ``1 - cos(x, stored(x))`` between the float32
source and what a reader gets back: float16 and bfloat16 are round-to-nearest-
even casts, int8 is symmetric per-(row, teacher) quantisation with
``scale = max|x| / 127`` and ``q = round(x / scale)`` (the store's x = q * scale).
The converter reports the maximum and mean over all samples written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def bfloat16_round(x: np.ndarray) -> np.ndarray:
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def int8_roundtrip(x: np.ndarray) -> np.ndarray:
    """x [..., D] -> dequantised int8 with one scale per last-axis slice."""
    amax = np.abs(x).max(axis=-1, keepdims=True)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(x / scale), -127, 127)
    return (q * scale).astype(np.float32)


def stored_values(x: np.ndarray, dtype: str) -> np.ndarray:
    """What a reader gets back for float32 ``x`` [..., K, D] stored as ``dtype``."""
    if dtype == "float16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":
        return bfloat16_round(x)
    if dtype == "int8":
        return int8_roundtrip(x)
    raise ValueError(dtype)


@dataclass
class CosineError:
    max: float = 0.0
    total: float = 0.0
    count: int = 0

    def add(self, source: np.ndarray, K: int, dtype: str) -> None:
        """Accumulate the error of one embedding matrix [rows, K*D]."""
        x = source.reshape(source.shape[0], K, -1).astype(np.float32, copy=False)
        y = stored_values(x, dtype)
        num = (x * y).sum(-1, dtype=np.float64)
        den = np.linalg.norm(x, axis=-1).astype(np.float64) * np.linalg.norm(y, axis=-1).astype(np.float64)
        err = 1.0 - np.divide(num, den, out=np.ones_like(num), where=den > 0)
        self.max = max(self.max, float(err.max(initial=0.0)))
        self.total += float(err.sum())
        self.count += int(err.size)

    def merge(self, other: "CosineError") -> None:
        self.max = max(self.max, other.max)
        self.total += other.total
        self.count += other.count

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def as_dict(self) -> dict:
        return {"max": self.max, "mean": self.mean, "slices": self.count}
