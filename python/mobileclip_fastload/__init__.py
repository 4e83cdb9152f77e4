"""mobileclip-fastload: the DR store, exact augmentation replay and a fast loader
for MobileCLIP-style multi-modal reinforced training."""

from mobileclip_fastload._core import (
    ChecksumError,
    FastloadError,
    ImageDecodeError,
    RemoteStoreError,
    SampleIndexError,
    SchemaVersionError,
    Store,
    StoreFormatError,
    __version__,
)
from mobileclip_fastload.loader import FastReinforcedLoader, ReinforcedBatch

__all__ = [
    "ChecksumError",
    "FastReinforcedLoader",
    "FastloadError",
    "ImageDecodeError",
    "ReinforcedBatch",
    "RemoteStoreError",
    "SampleIndexError",
    "SchemaVersionError",
    "Store",
    "StoreFormatError",
    "__version__",
]
