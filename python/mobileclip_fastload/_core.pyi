"""Type stubs for the compiled module ``mobileclip_fastload._core``."""

from os import PathLike
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

class FastloadError(Exception): ...
class StoreFormatError(FastloadError): ...
class SchemaVersionError(StoreFormatError): ...
class ChecksumError(FastloadError): ...
class ImageDecodeError(FastloadError): ...
class SampleIndexError(FastloadError): ...

# --- imaging (exact Pillow 13.0.0 + torchvision 0.29.2 replay) -------------

def decode_rgb(data: bytes, /, *, max_pixels: int | None = None) -> npt.NDArray[np.uint8]:
    """Decode JPEG/PNG bytes to [H, W, 3] uint8, identical to
    ``np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))``.

    Raises ImageDecodeError for undecodable, truncated, unsupported (not JPEG/PNG)
    or oversized images (more than ``max_pixels``, default Pillow's bomb limit
    2 * Image.MAX_IMAGE_PIXELS). The GIL is released while decoding.
    """

def replay_augmentation(
    data: bytes,
    top: int,
    left: int,
    height: int,
    width: int,
    ops: list[tuple[int, float]],
    size: int,
    interpolation: str = "bilinear",
    hflip: bool = False,
) -> npt.NDArray[np.uint8]:
    """Decode and replay one augmentation: crop box (top, left, height, width)
    in image pixels (black padding outside the image), resize to size x size
    ("bilinear" or "bicubic"), optional horizontal flip, then up to two
    RandAugment ``(op_index, magnitude)`` pairs in order (op indices as in
    ``reference.OP_NAMES``). Returns [size, size, 3] uint8, bit-identical to
    ``mobileclip_fastload.reference.reference_replay``. The GIL is released.
    """

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
