"""Everything a shard task needs to know, resolved once in the driver and shipped to workers."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mobileclip_fastload.ingest.options import (  # noqa: F401 (re-exported: convert's public names)
    DEFAULT_FORMATS,
    DEFAULT_MAX_EMBEDDING_BYTES,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_LISTED_PER_REASON,
    DEFAULT_TARGET_SHARD_BYTES,
    EMBEDDING_DTYPES,
    VERIFY_RESUMED,
    Dims,
    check_choice,
    check_shared_options,
)

LAYOUTS = ("joined", "separate")


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
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_embedding_bytes: int = DEFAULT_MAX_EMBEDDING_BYTES
    max_listed_per_reason: int = DEFAULT_MAX_LISTED_PER_REASON

    def __post_init__(self):
        check_shared_options(self)
        check_choice("layout", self.layout, LAYOUTS)

    def fingerprint(self) -> dict:
        """What determines a task's output: a done record made under other options is redone."""
        d = asdict(self)
        d.pop("max_listed_per_reason")
        d["dims"] = self.dims.as_dict()
        d["image_formats"] = list(self.image_formats)
        return d
