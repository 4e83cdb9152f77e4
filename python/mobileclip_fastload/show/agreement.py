"""Teacher agreement from the stored embeddings (no model): cosines per teacher,
and which samples are outliers for the store.

Image side: the J augmentation rows of a teacher, and their mean (the
un-augmented estimate). Caption c, teacher k: cos(text row c, mean of the J
image rows). Augmentation j, teacher k: cos(image row j, mean of the J rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobileclip_fastload.store import decode_embeddings

#: a sample is an agreement outlier when a score is this many robust standard deviations
#: (1.4826 * median absolute deviation) from the summarised subset's median
OUTLIER_Z = 3.5


def teacher_rows(values: np.ndarray, embedding_dtype: str, scales: np.ndarray | None, K: int) -> np.ndarray:
    """Stored rows [rows, K*D] -> float32 [rows, K, D]."""
    x = decode_embeddings(values, embedding_dtype, scales)
    return x.reshape(x.shape[0], K, -1)


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1)


@dataclass(frozen=True)
class SampleCosines:
    caption: np.ndarray  # [1+S, K]: each caption row vs the mean of the J image rows
    augmentation: np.ndarray  # [J, K]: each image row vs the mean of the J image rows


def sample_cosines(store, i: int) -> SampleCosines:
    K, dtype = store.dims["K"], store.embedding_dtype
    image = teacher_rows(store.image_embs(i), dtype, store.image_emb_scales(i), K)  # [J, K, D]
    text = teacher_rows(store.text_emb(i), dtype, store.text_emb_scales(i), K)  # [1+S, K, D]
    mean = _unit(image.mean(axis=0))  # [K, D]
    return SampleCosines(
        caption=np.einsum("ckd,kd->ck", _unit(text), mean),
        augmentation=np.einsum("jkd,kd->jk", _unit(image), mean),
    )


def agreement_scores(cos: SampleCosines) -> np.ndarray:
    """The scores outliers are judged on: the real caption's cosine per teacher, then (K > 1) the
    teachers' spread on it (max - min): low agreement with the picture, or teachers that disagree."""
    real = cos.caption[0]
    return np.concatenate([real, [real.max() - real.min()]]) if len(real) > 1 else real


def score_names(teachers: list[str]) -> list[str]:
    names = [f"real-caption cosine, {t}" for t in teachers]
    return [*names, "teachers' spread on the real caption"] if len(teachers) > 1 else names


@dataclass(frozen=True)
class OutlierRule:
    """Median and robust scale of each score over the summarised subset."""

    median: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, scores: np.ndarray) -> OutlierRule:
        median = np.median(scores, axis=0)
        mad = np.median(np.abs(scores - median), axis=0)
        return cls(median, 1.4826 * mad)

    def z(self, scores: np.ndarray) -> np.ndarray:
        return (scores - self.median) / np.where(self.scale > 0, self.scale, np.inf)

    def outlying(self, scores: np.ndarray) -> np.ndarray:
        """Which scores lie OUTLIER_Z or more robust deviations from the median."""
        return np.abs(self.z(scores)) >= OUTLIER_Z
