"""The options base of the ingest tools: the choices and defaults both offer, and the checks of the
fields every tool's options have (``embedding_dtype``, ``target_shard_bytes``, ``image_formats``,
``max_image_pixels``, ``max_listed_per_reason``), written once. ``ConvertOptions`` and
``ReinforceOptions`` call ``check_shared_options`` first, then check their own fields."""

from __future__ import annotations

from typing import Any

from mobileclip_fastload._core import EMBEDDING_DTYPES, Dims
from mobileclip_fastload.ingest.images import DEFAULT_FORMATS, DEFAULT_MAX_IMAGE_PIXELS

__all__ = [
    "DEFAULT_FORMATS",
    "DEFAULT_MAX_EMBEDDING_BYTES",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_LISTED_PER_REASON",
    "DEFAULT_TARGET_SHARD_BYTES",
    "EMBEDDING_DTYPES",
    "VERIFY_RESUMED",
    "Dims",
    "check_choice",
    "check_shared_options",
]

#: How a re-run checks the outputs of a task it finds done: whole-file xxh3, or sizes only.
VERIFY_RESUMED = ("checksum", "size")
# ~3.5k DataCompDR-12M samples at float16; a worker holds about 3x this while writing a shard.
DEFAULT_TARGET_SHARD_BYTES = 512 << 20
DEFAULT_MAX_EMBEDDING_BYTES = 64 << 20  # per sample; DataCompDR-12M needs ~0.2 MB
# Every skipped sample is listed with its uid; this caps the list per reason and shard (the counts stay exact).
DEFAULT_MAX_LISTED_PER_REASON = 10_000


def check_choice(name: str, value: object, choices: tuple) -> None:
    """An API argument that the CLIs offer as `choices`: ValueError naming it unless it is one."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_shared_options(opts: Any) -> None:
    """ValueError naming the first shared field of a tool's options that is not valid."""
    check_choice("embedding_dtype", opts.embedding_dtype, EMBEDDING_DTYPES)
    if opts.target_shard_bytes <= 0:
        raise ValueError("target_shard_bytes must be positive")
    if not opts.image_formats or not all(isinstance(f, str) for f in opts.image_formats):
        raise ValueError(f"image_formats must be a non-empty list of Pillow format names, got {opts.image_formats!r}")
    if opts.max_image_pixels <= 0:
        raise ValueError(f"max_image_pixels must be positive, got {opts.max_image_pixels!r}")
    if opts.max_listed_per_reason < 0:
        raise ValueError(f"max_listed_per_reason must be >= 0, got {opts.max_listed_per_reason!r}")
