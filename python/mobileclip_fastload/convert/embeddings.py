"""Reading the teacher embeddings of one sample, safely and with bounded memory.

``npz``: a zip of ``.npy`` arrays (stored or deflated). Every array header is
checked before any allocation (dtype must be a plain float, the declared shape
must match the member's actual size, and the member must be below a size cap),
so a lying header or a zip bomb cannot allocate gigabytes; arrays are then
viewed in place with ``np.frombuffer``.

``pth.gz``: a gzip of a ``torch.save``d dict of (bfloat16) tensors. Decompressed
with a cap, loaded with ``torch.load(weights_only=True)`` only (never arbitrary
unpickling), converted to float32 (exact for bfloat16).
"""

from __future__ import annotations

import io
import warnings
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

from mobileclip_fastload.ingest.skips import (
    BAD_EMBEDDING_FILE,
    MISSING_FIELD,
    NON_FINITE_EMBEDDING,
    SHAPE_MISMATCH,
    SkipSample,
)
from mobileclip_fastload.store.caption_sets import PLAIN_SET_NAME

EMBEDDING_EXTENSIONS = ("npz", "pth.gz")


def load_npz(data: bytes, max_bytes: int) -> dict[str, np.ndarray]:
    """All arrays of an npz as float32 (a view when already float32)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise SkipSample(BAD_EMBEDDING_FILE, f"npz is not a readable zip: {e}") from None
    out: dict[str, np.ndarray] = {}
    total = 0
    for info in infos:
        if not info.filename.endswith(".npy"):
            continue
        total += info.file_size
        if total > max_bytes:
            raise SkipSample(BAD_EMBEDDING_FILE, f"npz expands to more than {max_bytes} bytes")
        try:
            raw = zf.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error, NotImplementedError) as e:
            raise SkipSample(BAD_EMBEDDING_FILE, f"npz member {info.filename}: {e}") from None
        out[info.filename[: -len(".npy")]] = _npy_view(raw, info.filename)
    return out


def _npy_view(raw: bytes, name: str) -> np.ndarray:
    fmt = np.lib.format
    f = io.BytesIO(raw)
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError as e:
        raise SkipSample(BAD_EMBEDDING_FILE, f"{name}: bad .npy header: {e}") from None
    if dtype.hasobject or dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
        raise SkipSample(BAD_EMBEDDING_FILE, f"{name}: dtype {dtype} is not a float type")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    offset = f.tell()
    if count * dtype.itemsize != len(raw) - offset:
        raise SkipSample(
            BAD_EMBEDDING_FILE,
            f"{name}: header says {shape} {dtype} ({count * dtype.itemsize} bytes) but holds {len(raw) - offset}",
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return arr.astype(np.float32, copy=False)


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=31)
        try:
            out += d.decompress(rest, max_bytes - len(out) + 1)
        except zlib.error as e:
            raise SkipSample(BAD_EMBEDDING_FILE, f"pth.gz is not valid gzip: {e}") from None
        if len(out) > max_bytes or d.unconsumed_tail:
            raise SkipSample(BAD_EMBEDDING_FILE, f"pth.gz expands to more than {max_bytes} bytes")
        if not d.eof:
            raise SkipSample(BAD_EMBEDDING_FILE, "pth.gz is truncated")
        rest = d.unused_data
    return bytes(out)


def load_pth_gz(data: bytes, max_bytes: int) -> dict[str, np.ndarray]:
    """All tensors of a gzipped torch-saved dict, as float32 arrays."""
    raw = _gunzip(data, max_bytes)
    import torch  # only needed for this variant; costs ~1 s to import

    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols; failures are reported below
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types (UnpicklingError, RuntimeError, ...)
        raise SkipSample(
            BAD_EMBEDDING_FILE, f"pth.gz: torch.load(weights_only=True) failed: {type(e).__name__}: {e}"
        ) from None
    if not isinstance(obj, dict):
        raise SkipSample(BAD_EMBEDDING_FILE, f"pth.gz holds a {type(obj).__name__}, not a dict")
    out: dict[str, np.ndarray] = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            out[str(k)] = _tensor_as_float32(torch, k, v)
    return out


def _tensor_as_float32(torch, name, v) -> np.ndarray:
    """Without torch compute (its intra-op threads spin and cost more than the work here):
    bfloat16 bits are widened in numpy (exact), other float types cast by numpy."""
    v = v.detach().contiguous()
    if v.dtype == torch.bfloat16:
        bits = v.view(torch.int16).numpy().view(np.uint16)
        return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
    if v.dtype in (torch.float16, torch.float32, torch.float64):
        return v.numpy().astype(np.float32, copy=False)
    raise SkipSample(BAD_EMBEDDING_FILE, f"pth.gz tensor {name!r} has dtype {v.dtype}, not a float type")


def load_embeddings(members: dict[str, bytes], max_bytes: int) -> dict[str, np.ndarray]:
    if "npz" in members:
        return load_npz(members["npz"], max_bytes)
    if "pth.gz" in members:
        return load_pth_gz(members["pth.gz"], max_bytes)
    raise SkipSample(MISSING_FIELD, "no npz or pth.gz member")


def select_embeddings(
    arrays: dict[str, np.ndarray], *, caption_sets: Sequence[tuple[str, int]], J: int, KD: int, truncate_j: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(image_emb [J, KD], text_emb [1+S, KD]): the real caption's row, then each caption set's S_i rows in order.

    Legacy DataCompDR: ``text_emb`` is [1+S, KD] (real caption, then ``syn_text``).
    Newer RayGen / DFNDR shards: ``text_emb`` holds the real caption row(s) and every
    synthetic key ``k`` has its own ``k_emb`` [S_k, KD]; that array wins when present.
    """
    image = arrays.get("image_emb")
    text = arrays.get("text_emb")
    if image is None:
        raise SkipSample(MISSING_FIELD, "embeddings have no image_emb")
    if text is None:
        raise SkipSample(MISSING_FIELD, "embeddings have no text_emb")
    if image.ndim != 2 or image.shape[1] != KD or image.shape[0] < J or (image.shape[0] != J and not truncate_j):
        raise SkipSample(SHAPE_MISMATCH, f"image_emb shape {image.shape}, expected ({J}, {KD})")
    if text.ndim != 2 or text.shape[1] != KD or text.shape[0] < 1:
        raise SkipSample(SHAPE_MISMATCH, f"text_emb shape {text.shape}, expected (1+S, {KD})")
    parts = [text[:1]]
    for syn_key, S in caption_sets:
        tagged = arrays.get(syn_key + "_emb")
        if tagged is not None:
            if tagged.ndim != 2 or tagged.shape != (S, KD):
                raise SkipSample(SHAPE_MISMATCH, f"{syn_key}_emb shape {tagged.shape}, expected ({S}, {KD})")
            parts.append(tagged)
        elif syn_key == PLAIN_SET_NAME:
            if text.shape[0] != 1 + S:
                raise SkipSample(SHAPE_MISMATCH, f"text_emb shape {text.shape}, expected ({1 + S}, {KD})")
            parts.append(text[1:])
        else:
            raise SkipSample(MISSING_FIELD, f"embeddings have no {syn_key}_emb")
    text_rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
    image_rows = image[:J]
    if not (np.isfinite(image_rows).all() and np.isfinite(text_rows).all()):
        raise SkipSample(NON_FINITE_EMBEDDING, "NaN or inf in image_emb/text_emb")
    return image_rows, text_rows
