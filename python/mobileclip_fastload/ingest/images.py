"""Checking one image: Pillow must identify it and fully decode it.

The replay is Pillow-exact, so an image that Pillow cannot decode (or can only
decode with ``LOAD_TRUNCATED_IMAGES``) would fail or give other pixels later:
it is skipped here. The header is read first so a decompression bomb (a tiny
file claiming a huge size) is refused before any pixel buffer is allocated.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np

from mobileclip_fastload._core import DECODE_MAX_PIXELS
from mobileclip_fastload.ingest.skips import (
    DECOMPRESSION_BOMB,
    UNDECODABLE_IMAGE,
    UNSUPPORTED_IMAGE_FORMAT,
    SkipSample,
)

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
DEFAULT_FORMATS = ("JPEG", "PNG", "WEBP")
# Pillow's Image.MAX_IMAGE_PIXELS (89,478,485): it warns above it and refuses above twice it,
# DECODE_MAX_PIXELS, the limit the core's decoders apply.
DEFAULT_MAX_IMAGE_PIXELS = DECODE_MAX_PIXELS // 2


@dataclass(frozen=True)
class CheckedImage:
    format: str
    mode: str
    width: int
    height: int
    sha256: bytes
    rgb: np.ndarray  # Pillow's `.convert("RGB")` pixels: what the reference replay starts from


def find_image(members: dict[str, bytes]) -> tuple[str, bytes] | None:
    for ext in IMAGE_EXTENSIONS:
        if ext in members:
            return ext, members[ext]
    return None


def check_image(data: bytes, *, formats=DEFAULT_FORMATS, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> CheckedImage:
    from PIL import Image, ImageFile

    truncated_setting = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, as in the replay
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img = Image.open(io.BytesIO(data))
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
                raise SkipSample(DECOMPRESSION_BOMB, str(e)) from None
            except Exception as e:  # UnidentifiedImageError, SyntaxError, struct.error, ...
                raise SkipSample(UNDECODABLE_IMAGE, f"Pillow cannot identify it: {type(e).__name__}: {e}") from None
            with img:
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise SkipSample(UNDECODABLE_IMAGE, f"image claims size {width}x{height}")
                if width * height > max_pixels:
                    raise SkipSample(
                        DECOMPRESSION_BOMB, f"{width}x{height} = {width * height} pixels > limit {max_pixels}"
                    )
                if img.format not in formats:
                    raise SkipSample(UNSUPPORTED_IMAGE_FORMAT, f"format {img.format} not in {tuple(formats)}")
                try:
                    img.load()
                except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
                    raise SkipSample(DECOMPRESSION_BOMB, str(e)) from None
                except Exception as e:  # OSError("image file is truncated"), SyntaxError, ValueError, ...
                    raise SkipSample(UNDECODABLE_IMAGE, f"Pillow cannot decode it: {type(e).__name__}: {e}") from None
                fmt, mode = img.format, img.mode
                rgb = np.asarray(img.convert("RGB"))
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated_setting
    return CheckedImage(fmt, mode, width, height, hashlib.sha256(data).digest(), rgb)


def loader_ready(data: bytes, checked: CheckedImage) -> tuple[bytes, str | None]:
    """Bytes that the loader's own decoder turns into exactly Pillow's RGB pixels.

    The original bytes when the Rust decoder agrees with Pillow bit for bit;
    otherwise (a format or mode it does not decode, e.g. WebP, 16-bit PNG,
    CMYK variants) a lossless PNG of Pillow's pixels, and the reason. Either
    way the replay later starts from the very pixels the reference would see,
    so no image can silently decode differently at training time.
    """
    from PIL import Image

    from mobileclip_fastload._core import ImageDecodeError, decode_rgb

    try:
        ours = decode_rgb(data)
        if ours.shape == checked.rgb.shape and np.array_equal(ours, checked.rgb):
            return data, None
        reason = "the loader's decoder gives other pixels than Pillow"
    except ImageDecodeError as e:
        reason = f"the loader's decoder refuses it ({e})"
    buf = io.BytesIO()
    Image.fromarray(checked.rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), reason
