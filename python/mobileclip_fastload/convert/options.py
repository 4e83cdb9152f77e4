"""Everything a shard task needs to know, resolved once in the driver and shipped to workers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mobileclip_fastload.convert.images import DEFAULT_FORMATS, DEFAULT_MAX_PIXELS

EMBEDDING_DTYPES = ("float16", "bfloat16", "int8")
LAYOUTS = ("joined", "separate")
DEFAULT_TARGET_SHARD_BYTES = 1 << 30  # 1 GiB: ~7k DataCompDR-12M samples at float16
DEFAULT_MAX_EMBEDDING_BYTES = 64 << 20  # per sample; DataCompDR-12M needs ~0.2 MB


@dataclass(frozen=True)
class Dims:
    J: int
    S: int
    K: int
    D: int

    @property
    def KD(self) -> int:
        return self.K * self.D

    def as_dict(self) -> dict:
        return {"J": self.J, "S": self.S, "K": self.K, "D": self.D}


@dataclass(frozen=True)
class ConvertOptions:
    layout: str
    dims: Dims
    syn_key: str
    embedding_dtype: str = "float16"
    # True when the user capped the augmentations (keep the first J); otherwise
    # a sample with another count is a shape mismatch.
    truncate_augmentations: bool = False
    target_shard_bytes: int = DEFAULT_TARGET_SHARD_BYTES
    image_formats: tuple[str, ...] = DEFAULT_FORMATS
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    max_embedding_bytes: int = DEFAULT_MAX_EMBEDDING_BYTES
    # Every skipped sample is listed with its uid; ``max_listed_per_reason`` caps the
    # list per reason and shard (the counts stay exact).
    max_listed_per_reason: int = 10_000
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.embedding_dtype not in EMBEDDING_DTYPES:
            raise ValueError(f"embedding_dtype must be one of {EMBEDDING_DTYPES}, got {self.embedding_dtype!r}")
        if self.target_shard_bytes <= 0:
            raise ValueError("target_shard_bytes must be positive")

    def fingerprint(self) -> dict:
        """What determines a task's output: a done record made under other options is redone."""
        d = asdict(self)
        d.pop("max_listed_per_reason")
        d["image_formats"] = list(self.image_formats)
        return d
