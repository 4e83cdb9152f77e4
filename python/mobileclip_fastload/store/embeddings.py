"""Conversions between teacher embeddings and the store's element types.

- float16: IEEE half, round to nearest even (numpy's cast).
- bfloat16: stored as raw uint16 bits; float input is rounded to nearest even
  (same as torch's `.to(torch.bfloat16)`); uint16 input is taken as bits.
- int8: symmetric per (row, teacher): scale = max|x| / 127 over that teacher's D
  values, q = clip(rint(x / scale), -127, 127), so x ~ q * scale with error at
  most scale / 2; an all-zero slice gets scale 0 and q = 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bf16_bits_to_float32", "dequantize_int8", "encode_embeddings", "float_to_bf16_bits", "quantize_int8"]


def float_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float -> bfloat16 bit patterns (uint16), round to nearest even. Inputs must be finite."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    bias = np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    return ((u + bias) >> np.uint32(16)).astype(np.uint16)


def bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32 (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def quantize_int8(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """[rows, K*D] float -> (int8 [rows, K*D], float32 scales [rows, K])."""
    x = np.asarray(x, dtype=np.float32)
    rows = x.shape[0]
    per_teacher = x.reshape(rows, k, -1)
    scales = (np.abs(per_teacher).max(axis=2) / np.float32(127)).astype(np.float32)
    safe = np.where(scales > 0, scales, np.float32(1))[:, :, None]
    q = np.clip(np.rint(per_teacher / safe), -127, 127).astype(np.int8)
    return q.reshape(rows, -1), scales


def dequantize_int8(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int8 [rows, K*D] and scales [rows, K] -> float32 [rows, K*D]."""
    q = np.asarray(q)
    rows, k = scales.shape
    return (q.reshape(rows, k, -1).astype(np.float32) * scales[:, :, None]).reshape(q.shape)


def encode_embeddings(
    x: np.ndarray, embedding_dtype: str, k: int, scales: np.ndarray | None = None, *, what: str = "embedding"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Embeddings [rows, K*D] as stored: (elements, scales or None). Raises ValueError on bad input."""
    x = np.asarray(x)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{what} contains non-finite values")
    if embedding_dtype == "float16":
        if x.dtype.kind != "f":
            raise ValueError(f"{what}: a float16 store takes float input, got {x.dtype}")
        with np.errstate(over="ignore"):
            y = x.astype("<f2")
        if not np.isfinite(y).all():
            raise ValueError(f"{what} overflows float16")
        return y, None
    if embedding_dtype == "bfloat16":
        if x.dtype == np.uint16:
            return x.astype("<u2"), None
        if x.dtype.kind != "f":
            raise ValueError(f"{what}: a bfloat16 store takes float input or uint16 bf16 bits, got {x.dtype}")
        bits = float_to_bf16_bits(x)
        if ((bits & 0x7F80) == 0x7F80).any():
            raise ValueError(f"{what} overflows bfloat16")
        return bits, None
    if embedding_dtype == "int8":
        if x.dtype == np.int8:
            if scales is None:
                raise ValueError(f"{what}: int8 input needs its scales")
            s = np.asarray(scales, dtype=np.float32)
            if s.shape != (x.shape[0], k) or not (np.isfinite(s).all() and (s >= 0).all()):
                raise ValueError(f"{what}: scales must be finite, non-negative, shape ({x.shape[0]}, {k})")
            return x, s
        if x.dtype.kind != "f":
            raise ValueError(f"{what}: an int8 store takes float input or int8 with scales, got {x.dtype}")
        return quantize_int8(x, k)
    raise ValueError(f"unknown embedding dtype {embedding_dtype!r}")
