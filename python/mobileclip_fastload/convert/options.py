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
from mobileclip_fastload.store.caption_sets import PLAIN_SET_NAME

LAYOUTS = ("joined", "separate")

#: The caption sets a store holds, in storage order: (syn.json key, its S_i); S = the sum.
CaptionSets = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ConvertOptions:
    layout: str
    dims: Dims
    caption_sets: CaptionSets  # the writer stores the plain case (one set syn_text) without a key
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
        names = [name for name, _ in self.caption_sets]
        if not names or len(set(names)) != len(names) or min(n for _, n in self.caption_sets) < 1:
            raise ValueError(f"caption_sets must be distinct names with S_i >= 1, got {self.caption_sets!r}")
        if sum(n for _, n in self.caption_sets) != self.dims.S:
            raise ValueError(f"caption_sets {self.caption_sets!r} do not add up to S={self.dims.S}")

    def fingerprint(self) -> dict:
        """What determines a task's output: a done record made under other options is redone."""
        d = asdict(self)
        d.pop("max_listed_per_reason")
        d["dims"] = self.dims.as_dict()
        d["image_formats"] = list(self.image_formats)
        sets = d.pop("caption_sets")
        if len(sets) == 1 and sets[0][0] == PLAIN_SET_NAME:
            d["syn_key"] = sets[0][0]  # as a plain run recorded it before caption sets: its done records stay valid
        else:
            d["caption_sets"] = [list(s) for s in sets]
        return d
