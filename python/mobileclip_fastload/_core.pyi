"""Type stubs for the compiled module `mobileclip_fastload._core`."""

from os import PathLike
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

# -- errors -------------------------------------------------------------------
class FastloadError(Exception): ...
class StoreFormatError(FastloadError): ...
class SchemaVersionError(StoreFormatError): ...
class ChecksumError(FastloadError): ...
class ImageDecodeError(FastloadError): ...
class SampleIndexError(FastloadError): ...

# -- loader -------------------------------------------------------------------
class BatchMemory:
    """Owns one batch's memory while numpy arrays / tensors view it."""
    @property
    def images_address(self) -> int: ...

class LoaderCore:
    def __init__(
        self,
        path: str | PathLike[str],
        *,
        batch_size: int,
        image_size: int,
        interpolation: str,
        output: str,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        embedding_dtype: str,
        num_threads: int,
        prefetch: int,
        seed: int,
        shuffle: bool,
        drop_last: bool,
        rank: int,
        world_size: int,
        caption_mode: str,
        mix_probability: float,
        on_error: str,
    ) -> None: ...
    def num_batches(self) -> int: ...
    def num_samples(self) -> int: ...
    def dims(self) -> dict[str, int]: ...
    def start_epoch(self, epoch: int, start: int) -> None: ...
    def stop(self) -> None: ...
    def next_batch(self) -> dict[str, Any] | None:
        """Arrays: images, text, syn_text, image_emb, text_emb, syn_text_emb, index,
        aug_index, syn_index, text_is_syn; plus epoch, batch_number, memory."""
    def skipped(self) -> list[dict[str, Any]]: ...
    def samples_produced(self) -> int: ...
    def buffers_allocated(self) -> int: ...
