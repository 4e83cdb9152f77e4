"""decode_rgb must equal np.asarray(Image.open(...).convert("RGB")) (the Pillow of
_core.PIXEL_REFERENCE) for every JPEG/PNG flavour Pillow reads, and fail loudly
where Pillow fails."""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

import numpy as np
import pytest
from mobileclip_fastload import ImageDecodeError, _core
from PIL import Image
from skimage import data as skdata


def pillow_rgb(b: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(b)) as im:
        return np.asarray(im.convert("RGB"))


def assert_same_decode(b: bytes) -> None:
    ours = _core.decode_rgb(b)
    ref = pillow_rgb(b)
    assert ours.dtype == np.uint8 and ours.shape == ref.shape
    assert np.array_equal(ours, ref), f"max |diff| {np.abs(ours.astype(int) - ref).max()}"


@cache
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


@pytest.mark.slow
@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket"])
@pytest.mark.parametrize("quality", [30, 75, 95, 100])
@pytest.mark.parametrize("subsampling", [0, 1, 2])  # 4:4:4, 4:2:2, 4:2:0
def test_jpeg_color(name, quality, subsampling):
    # Odd sizes exercise the partial-MCU edges of the chroma upsampler.
    assert_same_decode(jpeg(photo(name, 131, 97), quality=quality, subsampling=subsampling))


@pytest.mark.slow
@pytest.mark.parametrize("kw", [{"progressive": True}, {"optimize": True}, {"progressive": True, "subsampling": 1}])
def test_jpeg_progressive_and_optimized(kw):
    assert_same_decode(jpeg(photo("astronaut", 160, 120), quality=85, **kw))


@pytest.mark.slow
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
    with pytest.raises(OSError, match="truncated"):
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


# Pillow cannot write these flavours. All but "ycck" were written by libjpeg-turbo 3.1's
# cjpeg from skimage's coffee at 37x23; "ycck" by TurboJPEG from synthetic CMYK (29x19, 4:2:0).
CJPEG_FIXTURES = {
    "ycck": (
        "/9j/7gAOQWRvYmUAZAAAAAAC/9sAQwAFAwQEBAMFBAQEBQUFBgcMCAcHBwcPCwsJDBEPEhIRDxERExYcFxMUGhURERghGBodHR8f"
        "HxMXIiQiHiQcHh8e/9sAQwEFBQUHBgcOCAgOHhQRFB4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
        "Hh4eHh4e/8AAFAgAEwAdBAEiAAIRAQMRAQQiAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMF"
        "BQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RV"
        "VldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh"
        "4uPk5ebn6Onq8fLz9PX29/j5+v/EAB8BAAMBAQEBAQEBAQEAAAAAAAABAgMEBQYHCAkKC//EALURAAIBAgQEAwQHBQQEAAECdwAB"
        "AgMRBAUhMQYSQVEHYXETIjKBCBRCkaGxwQkjM1LwFWJy0QoWJDThJfEXGBkaJicoKSo1Njc4OTpDREVGR0hJSlNUVVZXWFlaY2Rl"
        "ZmdoaWpzdHV2d3h5eoKDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uLj5OXm5+jp"
        "6vLz9PX29/j5+v/aAA4EAQACEQMRBAAAPwBYNSziPdno/l6j94YxNulPOcf8fM7c8mKPzB0qCSCCVwbSZ7OcKpH2vG5Ag8xWlzkM"
        "Iwz3UudyCR4lLEilne2ldXuYI3O9ZA1yMRTEs0yNN90JvYG5lPybI0iUFias3MltdKTMq7yVcSTgBHYlpkaYEAJvYfapMhAkaRLl"
        "iaEnB8uqv0a39Vrf5c3nJFO/xW1v0evy21fbSfmOtmsGt55rGX+wvJzLLE6NNBaMkckgMsbDejwJOjfOAz3VwMzfLUMsFraTX8Nv"
        "cQ6JLZSv9oSNxeWlq8SSOC4GfmgSZG3HmS5uFPnkKKLa5tRfQQ3kM2m3drKscE1wohuLcofNXfgqkjIkUl5MimJ2kkhV1bGKmXTd"
        "nlXO3H2HZ/pafu7nT9nky/6Qnyf6rd9om/1Pm3Ekcf7zbinNbW7lfsc0lnMEXH2zllCDzFaXOQ4jDPdS7tyCR4lLEiqwu7uxkJeT"
        "Q7FmRVEmsoXJXG9Yx8wJkAkEkjbmy85Hy7cVG8F3G6JE8dzCzoVa+bA5JlR5i3K52tdyl8MR5S7wK0YtL1q4cx6TY6VqyoA5Os7y"
        "UR8srcOjedJkzOXy2JYxnAFJKnJJVbcvrrbsmlK6Xblkl3vqony8vxcq2u7pJ9t4tPyTV+spbEOtQXUE0k15cTaPLFF8ryub20iS"
        "2SVEIJzlbZCqhuj3MgAnwnFiTVL/AElvJvvEv/CHf8s45TAt8J1j/drbpJ5iOyQIiKWJkUyyTbXODTdOa/063b7PLi2g2GVyi+ZZ"
        "MkaEPcwsFUvAtxJO74hZriZFUuVqKLW/EujT3M/hPUvD/h+K4lCSwXlzPAYAEWRLUptdjLH5xeR3VSXnYEyFS1Loh/tiw0yXUgJ3"
        "vLCznnJGNz3F86TdMYDJDGm0YAVdoAGRVbwRbQagqveJ5pnt7J5BkgFrm7JnOBwDJtUMR1AA6ACiiiu3GGIUdFGWnlrPbtsvuRji"
        "m4VIqOn72Mfk4xbXo222tibwxGmpauuk6iovbJ9Es7lo7j95ueW0vLyUEtklHnRHaPOxtqggqAKpeGI01LV10nUVF7ZPolnctHcf"
        "vNzy2l5eSglsko86I7R52NtUEFQBRRVXR2NxqPh2OUlk1K4tEu16CQXDXEs/T7pkaKPcRgkKFPy8VseCtJ07xFY28ut2kd6W0+C7"
        "xJnaJp3laWQKOAzELkgfwqOgABRWWd+7Wko6Jp3+U2vy09Dtwrf7p/35r5JTsvRWWm2hD4JnnfxLbW7zzMsOkWN/E5cmRJntby9c"
        "h/vBWuI0kKA7SUUEbQBXUaBp2l6t4G0bVdW0jS9Ru3ijiLXdjFMqj7JazEqrqVVmknldmABctlicDBRX/9k="
    ),
    "440": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAUDBAQEAwUEBAQFBQUGBwwIBwcHBw8LCwkMEQ8SEhEPERETFhwXExQaFRERGCEYGh0d"
        "Hx8fExciJCIeJBweHx7/2wBDAQUFBQcGBw4ICA4eFBEUHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
        "Hh4eHh4eHh7/wAARCAAXACUDARIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
        "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
        "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
        "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
        "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
        "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
        "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDx7wv4HitNtzrrhmUbhbRnOP8AeNejeM7a1tdKSK2byi5L4xy4A5578HP4V8hUxderu7em"
        "h+gYDLsJz2S+/X/gHQ+EYtAsfCcevX1rHdFrpra2typaNNgU52D7xO4YzxXmnh34hXPhy8u4dPs47+xjQTXEF0QEyON6twVfHpnP"
        "cGpVGo6d4LXz6m+MpxVXduKWy6Hu2k6l4W14rp9/ov2CWTiOVLfyWB9QQAD9DmvK7T40PqtpcT6L4YSJ7VRJLNJOZzCM/fC7VHHq"
        "cj2NFOhi+a1WKt/XkedOdFK9OTT9f+Cdjq1oulavcWNvcLcvBKYi69Mg4P61wHhjWbhTJcy3LSC4/fNI/wAxZzzn6muacEqjUUe1"
        "PDSp4eM5Sue1+G5pRYfMeD0rze31y6nXzAsmOmVfGa1TtuzyZ0XJ3SOn8ceALnxN4NYabJHHqEDie0Zz8rOAcq3sQSPxorem+XVH"
        "HOrJS0Z8qa3cRz3r2nz6fehzFdRMd8eVPYjORn/Jor2qVKKpqS0OapjatSpyT1/P8LFnRLuTw3b3itq6RwXqBJo4oWZnAORgkDBo"
        "pRi6rtJ/l/kOtUjQXNGCv53/AMztfA3n6wv23yxBYwpsgj3ZY+59+n0orycZFU5OMUeph8RVrxUqjv8AkvRHWO4tD5buc/SiuFK5"
        "2xeh/9k="
    ),
    "411": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAUDBAQEAwUEBAQFBQUGBwwIBwcHBw8LCwkMEQ8SEhEPERETFhwXExQaFRERGCEYGh0d"
        "Hx8fExciJCIeJBweHx7/2wBDAQUFBQcGBw4ICA4eFBEUHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
        "Hh4eHh4eHh7/wAARCAAXACUDAUEAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
        "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
        "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
        "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
        "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
        "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
        "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDx7wv4HitNtzrrhmUbhbRnOP8AeNez+EYtAsfCcevX1rHdFrpra2typaNNgU52D7xO4Yzx"
        "XV6TqXhbXiun3+i/YJZOI5Ut/JYH1BAAP0Oa5zVrRdK1e4sbe4W5eCUxF16ZBwf1r4yvVjVlJvd6r+vQ+8pUKmHUIrZKz+e7+86z"
        "w3NKLD5jwelFFFCkzklFXZ5V4ztrW10pIrZvKLkvjHLgDnnvwc/hXK+HfiFc+HLy7h0+zjv7GNBNcQXRATI43q3BV8emc9wa6K0+"
        "ND6raXE+i+GEie1USSzSTmcwjP3wu1Rx6nI9jVHwxrNwpkuZblpBcfvmkf5iznnP1NP6qnT9r1X6nse1TrQi3o1+SZ0dvrl1OvmB"
        "ZMdMq+M0UUVnz2OX2KOn8ceALnxN4NYabJHHqEDie0Zz8rOAcq3sQSPxr5U1u4jnvXtPn0+9DmK6iY748qexGcjP+TVnRLuTw3b3"
        "itq6RwXqBJo4oWZnAORgkDBrtfA3n6wv23yxBYwpsgj3ZY+59+n0r1FH/Z9vP7jjp14uopN6rRLve/5L8jrHcWh8t3OfpRRRXj2P"
        "VP/Z"
    ),
    "441": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAUDBAQEAwUEBAQFBQUGBwwIBwcHBw8LCwkMEQ8SEhEPERETFhwXExQaFRERGCEYGh0d"
        "Hx8fExciJCIeJBweHx7/2wBDAQUFBQcGBw4ICA4eFBEUHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
        "Hh4eHh4eHh7/wAARCAAXACUDARQAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
        "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
        "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
        "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
        "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
        "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
        "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDx7wv4HitNtzrrhmUbhbRnOP8AeNejeM7a1tdKSK2byi5L4xy4A5578HP4V2njjwBc+JvB"
        "rDTZI49QgcT2jOflZwDlW9iCR+NFfI3qVH70mfb0atChK/s0zM8IxaBY+E49evrWO6LXTW1tblS0abApzsH3idwxnivNPDvxCufD"
        "l5dw6fZx39jGgmuILogJkcb1bgq+PTOe4NeZa3cRz3r2nz6fehzFdRMd8eVPYjORn/JorrjgFyWbt6Dr4+lWneEfLXb9T7D0nUvC"
        "2vFdPv8ARfsEsnEcqW/ksD6ggAH6HNeV2nxofVbS4n0XwwkT2qiSWaSczmEZ++F2qOPU5Hsa8Z0S7k8N294raukcF6gSaOKFmZwD"
        "kYJAwaKlYOCekm/WxlNztdpL0PpfVrRdK1e4sbe4W5eCUxF16ZBwf1rgPDGs3CmS5luWkFx++aR/mLOec/U1zngbz9YX7b5YgsYU"
        "2QR7ssfc+/T6UVxV8N7Od3+B6UcVRq01GnF+rf8Aw59HeG5pRYfMeD0rze31y6nXzAsmOmVfGaxXcWh8t3OfpRWSk+hm6EZas//Z"
    ),
    "420-arithmetic-progressive": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAUDBAQEAwUEBAQFBQUGBwwIBwcHBw8LCwkMEQ8SEhEPERETFhwXExQaFRERGCEYGh0d"
        "Hx8fExciJCIeJBweHx7/2wBDAQUFBQcGBw4ICA4eFBEUHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
        "Hh4eHh4eHh7/ygARCAAXACUDASIAAhEBAxEB/8wABgAQARD/2gAMAwEAAhADEAAAAf8AncNVytACaDi2vPYE+1/9Lj1gmzmi/r2m"
        "wraWJ5e41+7/zAAEEAX/2gAIAQEAAQUCFZrznpIEFZPS5mEgekIOnIZwx7ZVodyCoWEU3weugGi5AIiNp6efPwCMVjGzg5dVuP/M"
        "AAQRBf/aAAgBAwEBPwEeja/gj3Os5+myvnRRzTOwcjSj/8wABBEF/9oACAECAQE/ASTfjUsm/Fb8uclPpvj1cP/MAAQQBf/aAAgB"
        "AQAGPwKO275/8WWI3LSR2+3QYT3eTC7lWQQYMy+o15me35tWCKrA3e+MlZOkEpMrJ93hmAEdzDtsAhX+52WniMvit5PcNAMLYaze"
        "/8wABBAF/9oACAEBAAE/IWspQyKkHAHWW5pKCvP4dsIA25dd5aK4xq/UtZLERuIcWbrL7YPGKUlKaVT14kqi6PpojJOwUYmIpfp5"
        "nP2iMCwma7KumrOi/9oADAMBAAIAAwAAABDMektJsP/MAAQRBf/aAAgBAwEBPxBApN80kPjN5eI0NP2eoPlhx4bQrwJygP/MAAQR"
        "Bf/aAAgBAgEBPxAWc2yKRx7dgTfHG4ppoUmUOqj/zAAEEAX/2gAIAQEAAT8QlNUM8UxdID90tddqhJDstlgrkBaFpYcgscj5cBLy"
        "7nxqj40oAmVhU9Pu0akTwiImJjQkctjb3m3jgc9ucjYNHuST37DZeaZ/GriRYqOoVYsK/ORmRBllRLBlIfPl/AdVvfwHs9e+NXtU"
        "3+y4SqDrzSzcdXzzCE+al9+A/9k="
    ),
    "420-restart": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAUDBAQEAwUEBAQFBQUGBwwIBwcHBw8LCwkMEQ8SEhEPERETFhwXExQaFRERGCEYGh0d"
        "Hx8fExciJCIeJBweHx7/2wBDAQUFBQcGBw4ICA4eFBEUHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
        "Hh4eHh4eHh7/wAARCAAXACUDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
        "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
        "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
        "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
        "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
        "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
        "8vP09fb3+Pn6/90ABAAD/9oADAMBAAIRAxEAPwDx7wv4HitNtzrrhmUbhbRnOP8AeNez+EYtAsfCcevX1rHdFrpra2typaNNgU52"
        "D7xO4YzxXPeM7a1tdKSK2byi5L4xy4A5578HP4Vyvh34hXPhy8u4dPs47+xjQTXEF0QEyON6twVfHpnPcGvj5Tq15OT1fTsj9Dp4"
        "SjSw37vTX5s920nUvC2vFdPv9F+wSycRypb+SwPqCAAfoc1zmrWi6Vq9xY29wty8EpiLr0yDg/rXHWnxofVbS4n0XwwkT2qiSWaS"
        "czmEZ++F2qOPU5Hsao+GNZuFMlzLctILj980j/MWc85+prGpSqxivaxSlfoGEhGfO6ctEtme1+G5pRYfMeD0orze31y6nXzAsmOm"
        "VfGaKalbdnLLDtu9j//Q2fHHgC58TeDWGmyRx6hA4ntGc/KzgHKt7EEj8a+VNbuI5717T59PvQ5iuomO+PKnsRnIz/k0UV89gYp3"
        "8j6mriakVyp6NlnRLuTw3b3itq6RwXqBJo4oWZnAORgkDBrtfA3n6wv23yxBYwpsgj3ZY+59+n0oop4yP7rnerN8LWaqulFWXl19"
        "bnWO4tD5buc/SiiivGSueutj/9k="
    ),
    "rgb-colorspace": (
        "/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwAFAwQEBAMFBAQEBQUFBgcMCAcHBwcPCwsJDBEPEhIRDxERExYcFxMUGhURERghGBodHR8f"
        "HxMXIiQiHiQcHh8e/8AAEQgAFwAlA1IRAEcRAEIRAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMC"
        "BAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElK"
        "U1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY"
        "2drh4uPk5ebn6Onq8fLz9PX29/j5+v/aAAwDUgBHAEIAAD8Aw/ht8GrfT3ivfF7C4nA3Jp8Jyo/32HX6dPrXhGh+Fo7RftOsuPkX"
        "d5KHOB7mvlm00/YvmXLABRkqK9/0i002z0WK7mt45VWQxQ26JmOMKB0UdTzXsHgVfDVn4MTxLqNol2XvHtbW3dSyJsVSTsH3mO4Y"
        "B44r03wcnhvRfA8XivVLKLUJri9ktbaCYbo4/LVSSUH3mO8YzwADxW5YXWnXuLe4057Rm4VvJ8s/hxXZ6Pqfg/xIV0zUNBGmzS/L"
        "FMlt5DA+oIAB+hzXXaD4g8A+L2XSNX8OwafLN8kNzb26wOp9QVABPscg1QvozaSvDFIskquVyOgwcGuT1iyTRtdutPtrpbxraYws"
        "6DjK9e/GDXHa/pSeHvE95pUN2t79kmMJkQYBK9eM8YPFamkb1tv3jdTxXbeFbiYadljgHpiu58KXc39nZBwueAK43UfsdtAiRN5T"
        "ygsoPG4DBPPc45rxn4i2dtaaFHDaN5O995GOXCj1PXg5/CvJPGNlBa6WsdswjBO/kcuBjv8Ajn8K5EfEefQNavV0m1F3b2dt9ovE"
        "uCBFgHGQSQVbHTHWuU8HfEO78MT3UGn2UWoaeAJp7a7OEyBjercFHx6ZyOoNZHhjxZJpMFzYfYIdS0tyJZbW5bADgY8xGGCj444z"
        "kdQaVf2gZNbsLh9J0KGL7OgeeTeZniUn7wXaAPqc/Q12dj8Z5tVtLi40TwmkMloBLJNLcG4MAzw4XYo49TkexrotG8Y2TebfaH4W"
        "lE9piVpbm6+0CDnhwgRQcHuxI9jXUWGqRp4fjvxc+ak6rIkp53kjOfx61zXgvXLxb64muLp5PtOZneQbi0h53fU5rndB1a8fUp5p"
        "7hpGuGaaR5PmLOTkt9Tmmw6ncXS+bsmIPQo+K7S28QXc6b1WTHTKvjNdPBr9wy5UP6ZDkZrS8e+DL7xF4S36Pcpb6taSC5sJGPym"
        "RQQVb/ZYEqfrXXeOPh1P4o8EumntGl/E4mtGduGcA5U+xBIrtvE3gGbxB4Tb7D5YulYSW5ZuGYDkH2IyK+U/FviC11q/awcSaHrG"
        "/wAjUImYyQNtPYqCSM9iPxNfJ2qoovZLZd1pchzHcRMdyAg9iM5Gf8mvnu7jEdw8AJhlDFJY2OQCPQjrT9AXTvB8V5LqXipUtrxF"
        "Sa3tLJ2eVQcjBYAKffPermiahe+H7a9ij1BIob1AkyKhYuAcjHHFWdM1G+0e3u4YLlY47tAkqhSSwBz+FepeA9XvPFaw3sdqtjol"
        "pH5Vjbbwz4AHztj+I8cdhXXeA7WbUFa+YeVaxoVjXdlj7mtLw7bPcK9y3yRKuF55NdsXFsAkkrZ9AK6uRxZny3fJ+ma03It22Mc1"
        "/9k="
    ),
    "odd-3x2": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAUDBAQEAwUEBAQFBQUGBwwIBwcHBw8LCwkMEQ8SEhEPERETFhwXExQaFRERGCEYGh0d"
        "Hx8fExciJCIeJBweHx7/2wBDAQUFBQcGBw4ICA4eFBEUHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
        "Hh4eHh4eHh7/wAARCAAXACUDATIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
        "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
        "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
        "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
        "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
        "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
        "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDx7wv4HitNtzrrhmUbhbRnOP8AeNez+EYtAsfCcevX1rHdFrpra2typaNNgU52D7xO4Yzx"
        "XV6TqXhbXiun3+i/YJZOI5Ut/JYH1BAAP0Oa8z8Z21ra6UkVs3lFyXxjlwBzz34OfwrlfDvxCufDl5dw6fZx39jGgmuILogJkcb1"
        "bgq+PTOe4NdFafGh9VtLifRfDCRPaqJJZpJzOYRn74Xao49Tkexr49qvWfOld9b9j7+rRo0KMFF2Vunc7HVrRdK1e4sbe4W5eCUx"
        "F16ZBwf1rrPDc0osPmPB6UV4p4Y1m4UyXMty0guP3zSP8xZzzn6mujt9cup18wLJjplXxmisYNRKxWHlz23sdP448AXPibwaw02S"
        "OPUIHE9ozn5WcA5VvYgkfjXyprdxHPevafPp96HMV1Ex3x5U9iM5Gf8AJqzol3J4bt7xW1dI4L1Ak0cULMzgHIwSBg0UUV7OEjen"
        "87HjVK8rtSV0ldXO18DefrC/bfLEFjCmyCPdlj7n36fSusdxaHy3c5+lFFFFeRWS9o12PbozlOClLdn/2Q=="
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CJPEG_FIXTURES))
def test_jpeg_flavours_pillow_cannot_write(name):
    """4:4:0, 4:1:1, 4:4:1, arithmetic coding, restart markers, RGB colourspace,
    YCCK, unusual sampling factors: whole decode and region decode inside a replay."""
    import base64

    from mobileclip_fastload.reference import AugParams, reference_replay

    b = base64.b64decode("".join(CJPEG_FIXTURES[name]))
    assert_same_decode(b)
    for box in [(3, 9, 15, 20), (0, 20, 23, 17), (-4, -4, 12, 12)]:
        ours = _core.replay_augmentation(b, *box, [], 19, "bicubic")
        assert np.array_equal(ours, reference_replay(b, AugParams(*box), 19, "bicubic"))


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
    (0, 1, 1),
    (0, 2, 1),
    (0, 4, 1),
    (0, 8, 1),
    (0, 16, 1),
    (2, 8, 3),
    (2, 16, 3),
    (4, 8, 2),
    (4, 16, 2),
    (6, 8, 4),
    (6, 16, 4),
]


@pytest.mark.slow
@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize(("color_type", "depth", "samples"), PNG_KINDS)
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
        im = Image.fromarray(rgb[..., 0].astype(np.uint16) * 3)
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
