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
    StoreExistsError,
    StoreFormatError,
    StoreIOError,
    StoreNotFoundError,
    __version__,
)
from mobileclip_fastload.loader import FastReinforcedLoader, ReinforcedBatch
from mobileclip_fastload.pixel_reference import PIXEL_REFERENCE, describe, warn_if_installed_differs

__doc__ += f"\n\nThe loader's pixels are bit-identical to {describe()}'s replay (``PIXEL_REFERENCE``).\n"
warn_if_installed_differs()
del describe, warn_if_installed_differs


def __getattr__(name: str):
    # `mobileclip_fastload.reinforce(...)`: the subpackage is callable (it imports open_clip, so
    # only on first use). Importing it also binds it here, so this runs at most once.
    if name == "reinforce":
        import importlib

        return importlib.import_module("mobileclip_fastload.reinforce")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PIXEL_REFERENCE",
    "ChecksumError",
    "FastReinforcedLoader",
    "FastloadError",
    "ImageDecodeError",
    "ReinforcedBatch",
    "RemoteStoreError",
    "SampleIndexError",
    "SchemaVersionError",
    "Store",
    "StoreExistsError",
    "StoreFormatError",
    "StoreIOError",
    "StoreNotFoundError",
    "__version__",
    "reinforce",
]
