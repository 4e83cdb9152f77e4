"""Encoding teacher embeddings into the store dtype, and measuring what that costs.

The converter encodes each sample's float32 embeddings itself with the store's
own conversions (``_core.encode_embeddings``, the Rust writer's rules: float16 and
bfloat16 round to nearest even; int8 is symmetric per (row, teacher) with
``scale = max|x| / 127``), so a shard buffer holds 1-2 bytes per value, and the
error report is computed from exactly the values written: for every
(row, teacher) D-slice, ``1 - cos(x, decoded(x))``, max and mean over the store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobileclip_fastload import _core


@dataclass
class Encoded:
    values: np.ndarray  # float16 / uint16 bf16 bits / int8
    scales: np.ndarray | None  # int8 only: float32 [rows, K]
    decoded: np.ndarray  # float32 [rows, K*D]: what a reader gets back


def encode(x: np.ndarray, dtype: str, K: int) -> Encoded:
    """Raises ValueError for NaN/inf input or a value the dtype cannot hold."""
    values, scales = _core.encode_embeddings(np.ascontiguousarray(x, dtype=np.float32), dtype, K)
    return Encoded(values, scales, _core.decode_embeddings(values, dtype, scales))


@dataclass
class CosineError:
    max: float = 0.0
    total: float = 0.0
    count: int = 0

    def add(self, source: np.ndarray, decoded: np.ndarray, K: int) -> None:
        """Accumulate the error of one embedding matrix [rows, K*D]."""
        x = source.reshape(source.shape[0], K, -1).astype(np.float64)
        y = decoded.reshape(x.shape).astype(np.float64)
        num = (x * y).sum(-1)
        den = np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1)
        err = 1.0 - np.divide(num, den, out=np.ones_like(num), where=den > 0)
        err[(den == 0) & (np.abs(x).sum(-1) == 0) & (np.abs(y).sum(-1) == 0)] = 0.0  # zero stays zero: no error
        self.max = max(self.max, float(err.max(initial=0.0)))
        self.total += float(err.sum())
        self.count += int(err.size)

    def merge(self, other: CosineError) -> None:
        self.max = max(self.max, other.max)
        self.total += other.total
        self.count += other.count

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def as_dict(self) -> dict:
        return {"max": self.max, "mean": self.mean, "slices": self.count}
