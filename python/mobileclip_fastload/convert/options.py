"""Everything a shard task needs to know, resolved once in the driver and shipped to workers."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mobileclip_fastload._core import EMBEDDING_DTYPES, Dims
from mobileclip_fastload.ingest.images import DEFAULT_FORMATS, DEFAULT_MAX_PIXELS

LAYOUTS = ("joined", "separate")
#: How a re-run checks the outputs of a task it finds done: whole-file xxh3, or sizes only.
VERIFY_RESUMED = ("checksum", "size")
# ~3.5k DataCompDR-12M samples at float16; a worker holds about 3x this while writing a shard.
DEFAULT_TARGET_SHARD_BYTES = 512 << 20
DEFAULT_MAX_EMBEDDING_BYTES = 64 << 20  # per sample; DataCompDR-12M needs ~0.2 MB


def check_choice(name: str, value: object, choices: tuple) -> None:
    """An API argument that the CLIs offer as `choices`: ValueError naming it unless it is one."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


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
        d["dims"] = self.dims.as_dict()
        d["image_formats"] = list(self.image_formats)
        return d
