"""decode_rgb must equal np.asarray(Image.open(...).convert("RGB")) (Pillow 13.0.0)
for every JPEG/PNG flavour Pillow reads, and fail loudly where Pillow fails."""

from __future__ import annotations

import io
import struct
import zlib
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from mobileclip_fastload import ImageDecodeError, _core


def pillow_rgb(b: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(b)) as im:
        return np.asarray(im.convert("RGB"))


def assert_same_decode(b: bytes) -> None:
    ours = _core.decode_rgb(b)
    ref = pillow_rgb(b)
    assert ours.dtype == np.uint8 and ours.shape == ref.shape
    assert np.array_equal(ours, ref), f"max |diff| {np.abs(ours.astype(int) - ref).max()}"


@lru_cache(maxsize=None)
def photo(name: str, w: int, h: int) -> np.ndarray:
    """A real photograph from skimage, resized (any way: it is only content)."""
    img = getattr(skdata, name)()
    mode = "L" if img.ndim == 2 else "RGB"
    return np.asarray(Image.fromarray(img, mode).resize((w, h), Image.BILINEAR))


def jpeg(arr: np.ndarray, **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "JPEG", **kw)
    return b.getvalue()


# ---------------------------------------------------------------- JPEG


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket"])
@pytest.mark.parametrize("quality", [30, 75, 95, 100])
@pytest.mark.parametrize("subsampling", [0, 1, 2])  # 4:4:4, 4:2:2, 4:2:0
def test_jpeg_color(name, quality, subsampling):
    # Odd sizes exercise the partial-MCU edges of the chroma upsampler.
    assert_same_decode(jpeg(photo(name, 131, 97), quality=quality, subsampling=subsampling))


@pytest.mark.parametrize("kw", [{"progressive": True}, {"optimize": True}, {"progressive": True, "subsampling": 1}])
def test_jpeg_progressive_and_optimized(kw):
    assert_same_decode(jpeg(photo("astronaut", 160, 120), quality=85, **kw))


@pytest.mark.parametrize("name", ["camera", "astronaut"])
def test_jpeg_grayscale(name):
    arr = photo(name, 123, 77)
    gray = arr if arr.ndim == 2 else np.asarray(Image.fromarray(arr).convert("L"))
    b = jpeg(gray, quality=88)
    with Image.open(io.BytesIO(b)) as im:
        assert im.mode == "L"
    assert_same_decode(b)


def test_jpeg_cmyk_adobe_inverted():
    rgb = photo("coffee", 90, 61)
    cmyk = Image.fromarray(rgb).convert("CMYK")
    b = io.BytesIO()
    cmyk.save(b, "JPEG", quality=90)
    with Image.open(io.BytesIO(b.getvalue())) as im:
        assert im.mode == "CMYK"
    assert_same_decode(b.getvalue())


def test_jpeg_exif_orientation_is_ignored():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display; the reference ignores it
    assert_same_decode(jpeg(photo("rocket", 64, 40), quality=90, exif=exif.tobytes()))


def test_jpeg_extraneous_bytes_warning_still_decodes():
    # libjpeg warns "extraneous bytes before marker" and Pillow keeps the pixels.
    b = jpeg(photo("chelsea", 64, 48), quality=90)
    assert b.endswith(b"\xff\xd9")
    assert_same_decode(b[:-2] + b"\x00\x00\x00" + b[-2:])


def test_jpeg_truncated_is_an_error():
    b = jpeg(photo("chelsea", 96, 64), quality=90)
    cut = b[: len(b) // 2]
    with pytest.raises(OSError):
        pillow_rgb(cut)
    with pytest.raises(ImageDecodeError, match="truncated"):
        _core.decode_rgb(cut)


def test_jpeg_header_bomb_is_refused_before_decoding():
    b = bytearray(jpeg(photo("chelsea", 16, 16), quality=90))
    sof = b.index(b"\xff\xc0")
    struct.pack_into(">HH", b, sof + 5, 60000, 60000)  # height, width: 3.6e9 pixels
    with pytest.raises(Image.DecompressionBombError):
        pillow_rgb(bytes(b))
    with pytest.raises(ImageDecodeError, match="exceeds the limit"):
        _core.decode_rgb(bytes(b))


def test_max_pixels_is_configurable():
    b = jpeg(photo("chelsea", 40, 30), quality=90)
    assert _core.decode_rgb(b, max_pixels=1200).shape == (30, 40, 3)
    with pytest.raises(ImageDecodeError, match="exceeds the limit"):
        _core.decode_rgb(b, max_pixels=1199)


@pytest.mark.parametrize(
    "payload",
    [b"", b"not an image", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", b"\xff\xd8\xff\xe0garbage"],
)
def test_garbage_is_an_error(payload):
    with pytest.raises(ImageDecodeError):
        _core.decode_rgb(payload)


def test_other_formats_are_refused_clearly():
    b = io.BytesIO()
    Image.fromarray(photo("chelsea", 20, 20)).save(b, "WEBP")
    with pytest.raises(ImageDecodeError, match="unsupported image format"):
        _core.decode_rgb(b.getvalue())


# ---------------------------------------------------------------- PNG


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _pack_row(samples: np.ndarray, depth: int) -> bytes:
    """One row of samples at `depth` bits, big-endian / MSB-first."""
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    per = 8 // depth
    s = np.zeros(-(-len(samples) // per) * per, np.uint16)
    s[: len(samples)] = samples
    s = s.reshape(-1, per)
    shifts = np.array([8 - depth * (i + 1) for i in range(per)], np.uint16)
    return ((s << shifts).sum(axis=1)).astype(np.uint8).tobytes()


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def make_png(pixels: np.ndarray, depth: int, color_type: int, *, interlace=False, extra=b"") -> bytes:
    """A PNG written by hand (any bit depth / colour type, optional Adam7).
    `pixels` is [H, W, samples] of unsigned ints."""
    h, w = pixels.shape[:2]
    pixels = pixels.reshape(h, w, -1)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace))

    def rows(img):
        return b"".join(b"\x00" + _pack_row(r.reshape(-1), depth) for r in img)

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = pixels[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += rows(sub)
    else:
        raw = rows(pixels)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + extra
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


RNG = np.random.default_rng(1234)


def _content(h, w, samples, depth):
    """Photo content scaled to the bit depth, with random noise mixed in."""
    base = photo("astronaut", w, h).astype(np.uint32)
    base = np.concatenate([base, base.mean(axis=2, keepdims=True).astype(np.uint32)], axis=2)
    base = base[..., :samples] if samples <= 4 else base
    maxv = (1 << depth) - 1
    out = (base * maxv) // 255
    noise = RNG.integers(0, maxv + 1, out.shape)
    return np.where(RNG.random(out.shape) < 0.2, noise, out).astype(np.uint32)


PNG_KINDS = [
    # (color_type, depth, samples)
    (0, 1, 1), (0, 2, 1), (0, 4, 1), (0, 8, 1), (0, 16, 1),
    (2, 8, 3), (2, 16, 3),
    (4, 8, 2), (4, 16, 2),
    (6, 8, 4), (6, 16, 4),
]


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("color_type,depth,samples", PNG_KINDS)
def test_png_gray_rgb_alpha_all_depths(color_type, depth, samples, interlace):
    px = _content(37, 29, samples, depth)
    assert_same_decode(make_png(px, depth, color_type, interlace=interlace))


@pytest.mark.filterwarnings("ignore:Palette images with Transparency")
@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_png_palette_with_trns_and_short_palette(depth, interlace):
    n_idx = 1 << depth
    # A palette shorter than the index range: indices past it are black in Pillow.
    n_pal = max(1, n_idx - 3) if depth > 1 else 1
    pal = RNG.integers(0, 256, (n_pal, 3)).astype(np.uint8)
    trns = RNG.integers(0, 256, n_pal).astype(np.uint8)
    idx = RNG.integers(0, n_idx, (23, 31, 1))
    extra = _chunk(b"PLTE", pal.tobytes()) + _chunk(b"tRNS", trns.tobytes())
    assert_same_decode(make_png(idx, depth, 3, interlace=interlace, extra=extra))


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_png_decoder_buffers_do_not_leak_between_images(depth):
    # A large noisy image first leaves non-zero bytes in the reused buffers;
    # Adam7 passes of sub-byte rows must not pick them up.
    assert_same_decode(make_png(RNG.integers(0, 256, (90, 90, 3)), 8, 2))
    assert_same_decode(make_png(_content(31, 17, 1, depth), depth, 0, interlace=True))


def test_png_with_trns_on_gray_and_rgb():
    gray = _content(20, 20, 1, 8)
    assert_same_decode(make_png(gray, 8, 0, extra=_chunk(b"tRNS", b"\x00\x10")))
    rgb = _content(20, 20, 3, 8)
    assert_same_decode(make_png(rgb, 8, 2, extra=_chunk(b"tRNS", b"\x00\x10\x00\x20\x00\x30")))


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGB", "RGBA", "P", "I;16"])
def test_png_saved_by_pillow(mode):
    rgb = photo("coffee", 50, 33)
    im = Image.fromarray(rgb)
    if mode == "I;16":
        im = Image.fromarray((rgb[..., 0].astype(np.uint16) * 3))
    elif mode == "P":
        im = im.convert("P", palette=Image.ADAPTIVE, colors=50)
        im.info["transparency"] = 4
    else:
        im = im.convert(mode)
    b = io.BytesIO()
    im.save(b, "PNG")
    assert_same_decode(b.getvalue())


def test_png_bomb_and_corruption_are_errors():
    bomb = make_png(np.zeros((1, 1, 1), np.uint32), 8, 0)
    bomb = bytearray(bomb)
    # Claim 20000 x 20000 in IHDR (and fix its CRC): refused before any allocation.
    struct.pack_into(">II", bomb, 16, 20000, 20000)
    struct.pack_into(">I", bomb, 29, zlib.crc32(bytes(bomb[12:29])))
    with pytest.raises(Image.DecompressionBombError):
        pillow_rgb(bytes(bomb))
    with pytest.raises(ImageDecodeError, match="exceeds the limit"):
        _core.decode_rgb(bytes(bomb))
    good = make_png(_content(10, 10, 3, 8), 8, 2)
    with pytest.raises(ImageDecodeError):
        _core.decode_rgb(good[: len(good) - 30])
