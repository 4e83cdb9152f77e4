"""Type stubs for the compiled module ``mobileclip_fastload._core``."""

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
    *,
    partial_decode: bool = True,
    dct_scaling: float | None = None,
) -> npt.NDArray[np.uint8]:
    """Decode and replay one augmentation: crop box (top, left, height, width)
    in image pixels (black padding outside the image), resize to size x size
    ("bilinear" or "bicubic"), optional horizontal flip, then up to two
    RandAugment ``(op_index, magnitude)`` pairs in order (op indices as in
    ``reference.OP_NAMES``). Returns [size, size, 3] uint8, bit-identical to
    ``mobileclip_fastload.reference.reference_replay``. The GIL is released.
    JPEGs are decoded only around the crop (pixel-identical to a full decode);
    ``partial_decode=False`` decodes them whole (for benchmarking).
    ``dct_scaling=r`` turns on a fast mode that is NOT bit-exact: a JPEG crop
    at least ``r * size * d`` pixels on both sides is decoded at 1/d
    resolution (d = 8, 4 or 2, DCT-domain scaling) before the resize.
    """
