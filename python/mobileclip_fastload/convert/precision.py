"""Encoding teacher embeddings into the store dtype, and measuring what that costs.

The converter encodes each sample's float32 embeddings itself with the store's
own conversions (``mobileclip_fastload.store.embeddings``: float16 and bfloat16
round to nearest even; int8 is symmetric per (row, teacher) with
``scale = max|x| / 127``), so a shard buffer holds 1-2 bytes per value, and the
error report is computed from exactly the values written: for every
(row, teacher) D-slice, ``1 - cos(x, decoded(x))``, max and mean over the store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Encoded:
    values: np.ndarray  # float16 / uint16 bf16 bits / int8
    scales: np.ndarray | None  # int8 only: float32 [rows, K]
    decoded: np.ndarray  # float32 [rows, K*D]: what a reader gets back


def encode(x: np.ndarray, dtype: str, K: int) -> Encoded:
    from mobileclip_fastload import store as store_emb

    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "float16":
        with np.errstate(over="ignore"):  # overflow becomes inf, which the caller rejects
            v = x.astype(np.float16)
        return Encoded(v, None, v.astype(np.float32))
    if dtype == "bfloat16":
        v = store_emb.float_to_bf16_bits(x)
        return Encoded(v, None, store_emb.bf16_bits_to_float32(v))
    if dtype == "int8":
        q, s = store_emb.quantize_int8(x, K)
        return Encoded(q, s, store_emb.dequantize_int8(q, s))
    raise ValueError(f"unknown embedding dtype {dtype!r}")


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

    def merge(self, other: "CosineError") -> None:
        self.max = max(self.max, other.max)
        self.total += other.total
        self.count += other.count

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def as_dict(self) -> dict:
        return {"max": self.max, "mean": self.mean, "slices": self.count}
