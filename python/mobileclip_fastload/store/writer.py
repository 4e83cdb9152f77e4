"""Write DR stores: `write_shard` + `write_manifest` (public, used directly by the
converter for resumable per-input-shard conversion) and `StoreWriter` (rolling
shards built on those two).

Checksums are computed by the Rust reader on the written file
(`_core.store_shard_info`), which also validates it: a shard is only published
(renamed into place) once the reader accepts it, and writer and `verify` share
one checksum definition.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mobileclip_fastload import _core
from mobileclip_fastload.store.atomic import publishing, write_text_atomic
from mobileclip_fastload.store.aug import check_aug
from mobileclip_fastload.store.embeddings import encode_embeddings
from mobileclip_fastload.store.sample import Sample
from mobileclip_fastload.store.schema import (
    AUG_RECORD_SIZE,
    MAGIC,
    MANIFEST_FILE,
    MAX_TOKENS,
    SCHEMA_VERSION,
    Dims,
    check_embedding_dtype,
    shard_schema,
)

__all__ = ["ShardInfo", "StoreWriter", "shard_file_name", "write_manifest", "write_shard"]

_U32_MAX = 2**32 - 1


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest records about one shard."""

    file: str
    num_samples: int
    file_bytes: int
    file_xxh3: str
    columns: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "num_samples": self.num_samples,
            "file_bytes": self.file_bytes,
            "file_xxh3": self.file_xxh3,
            "columns": dict(self.columns),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ShardInfo:
        return cls(d["file"], int(d["num_samples"]), int(d["file_bytes"]), d["file_xxh3"], dict(d["columns"]))


def shard_file_name(n: int) -> str:
    return f"shard-{n:05d}.arrow"


@dataclass
class _Row:
    """A sample validated and converted to its stored form."""

    uid: str
    image: bytes
    size: tuple[int, int, int, int]
    caption: str
    caption_tokens: np.ndarray
    syn_captions: list[str]
    syn_tokens: list[np.ndarray]
    aug: bytes
    image_emb: np.ndarray
    text_emb: np.ndarray
    image_scale: np.ndarray | None
    text_scale: np.ndarray | None
    sha256: bytes | None
    flags: int

    def nbytes(self) -> int:
        n = len(self.image) + len(self.uid) + len(self.caption) + len(self.aug) + self.image_emb.nbytes
        n += self.text_emb.nbytes + sum(len(c) for c in self.syn_captions) + 64
        return n


def _tokens(t: Any, what: str) -> np.ndarray:
    a = np.asarray(t)
    if a.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {a.shape}")
    if a.size and (a.dtype.kind not in "iu" or a.min() < 0 or a.max() > 0xFFFF):
        raise ValueError(f"{what} must be integer token ids in 0..65535")
    if a.size > MAX_TOKENS:
        raise ValueError(f"{what} has {a.size} tokens; at most {MAX_TOKENS} (SOT and EOT included)")
    return a.astype("<u2")


def _normalize(s: Sample, dims: Dims, embedding_dtype: str) -> _Row:
    """Check one sample against the store's dims and convert it; errors name the sample."""
    J, S, K, D = dims
    try:
        if not isinstance(s.uid, str):
            raise ValueError(f"uid must be str, got {type(s.uid).__name__}")
        if not isinstance(s.image, (bytes, bytearray, memoryview, np.ndarray)):
            raise ValueError(f"image must be bytes, got {type(s.image).__name__}")
        image = bytes(s.image)
        size = tuple(int(v) for v in (s.width, s.height, s.orig_width, s.orig_height))
        if not all(0 <= v <= _U32_MAX for v in size):
            raise ValueError(f"width/height/orig_width/orig_height {size} must fit uint32")
        if not isinstance(s.caption, str):
            raise ValueError(f"caption must be str, got {type(s.caption).__name__}")
        if len(s.syn_captions) != S or not all(isinstance(c, str) for c in s.syn_captions):
            raise ValueError(f"syn_captions must be {S} strings, got {len(s.syn_captions)}")
        if len(s.syn_tokens) != S:
            raise ValueError(f"syn_tokens must hold {S} arrays, got {len(s.syn_tokens)}")
        aug = check_aug(s.aug, J)
        image_emb = np.asarray(s.image_emb)
        if image_emb.shape != (J, K * D):
            raise ValueError(f"image_emb must have shape ({J}, {K * D}), got {image_emb.shape}")
        text_emb = np.asarray(s.text_emb)
        if text_emb.shape != (1 + S, K * D):
            raise ValueError(f"text_emb must have shape ({1 + S}, {K * D}), got {text_emb.shape}")
        image_emb, image_scale = encode_embeddings(image_emb, embedding_dtype, K, s.image_emb_scale, what="image_emb")
        text_emb, text_scale = encode_embeddings(text_emb, embedding_dtype, K, s.text_emb_scale, what="text_emb")
        sha = None if s.sha256 is None else bytes(s.sha256)
        if sha is not None and len(sha) != 32:
            raise ValueError(f"sha256 must be 32 bytes, got {len(sha)}")
        if not 0 <= int(s.flags) <= _U32_MAX:
            raise ValueError(f"flags {s.flags} must fit uint32")
        return _Row(
            uid=s.uid,
            image=image,
            size=size,
            caption=s.caption,
            caption_tokens=_tokens(s.caption_tokens, "caption_tokens"),
            syn_captions=list(s.syn_captions),
            syn_tokens=[_tokens(t, f"syn_tokens[{k}]") for k, t in enumerate(s.syn_tokens)],
            aug=aug.astype(aug.dtype.newbyteorder("<")).tobytes(),
            image_emb=image_emb,
            text_emb=text_emb,
            image_scale=image_scale,
            text_scale=text_scale,
            sha256=sha,
            flags=int(s.flags),
        )
    except ValueError as e:
        raise ValueError(f"sample {getattr(s, 'uid', '?')!r}: {e}") from None


def _token_lists(lists: list[np.ndarray]) -> pa.Array:
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum([len(t) for t in lists], out=offsets[1:])
    values = np.concatenate(lists) if lists else np.zeros(0, np.uint16)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values.astype(np.uint16), pa.uint16()))


def _fixed(values: np.ndarray | pa.Array, size: int) -> pa.Array:
    if isinstance(values, np.ndarray):
        values = pa.array(values.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(values, size)


def _record_batch(rows: list[_Row], dims: Dims, embedding_dtype: str) -> pa.RecordBatch:
    J, S, K, D = dims
    n = len(rows)
    schema = shard_schema(dims, embedding_dtype)
    elem = {"float16": np.dtype("<f2"), "bfloat16": np.dtype("<u2"), "int8": np.dtype("i1")}[embedding_dtype]

    def stack(arrays: list[np.ndarray], shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.stack(arrays).astype(dtype, copy=False) if arrays else np.zeros((0, *shape), dtype)

    sizes = np.array([r.size for r in rows], dtype=np.uint32).reshape(n, 4)
    columns: list[pa.Array] = [
        pa.array([r.uid for r in rows], pa.string()),
        pa.array([r.image for r in rows], pa.large_binary()),
        pa.array(sizes[:, 0]),
        pa.array(sizes[:, 1]),
        pa.array(sizes[:, 2]),
        pa.array(sizes[:, 3]),
        pa.array([r.caption for r in rows], pa.string()),
        _token_lists([r.caption_tokens for r in rows]),
        _fixed(pa.array([c for r in rows for c in r.syn_captions], pa.string()), S),
        _fixed(_token_lists([t for r in rows for t in r.syn_tokens]), S),
        pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(J * AUG_RECORD_SIZE), n, [None, pa.py_buffer(b"".join(r.aug for r in rows))]
        ),
        _fixed(stack([r.image_emb for r in rows], (J, K * D), elem), J * K * D),
        _fixed(stack([r.text_emb for r in rows], (1 + S, K * D), elem), (1 + S) * K * D),
    ]
    if embedding_dtype == "int8":
        f32 = np.dtype("<f4")
        columns.append(_fixed(stack([r.image_scale for r in rows], (J, K), f32), J * K))
        columns.append(_fixed(stack([r.text_scale for r in rows], (1 + S, K), f32), (1 + S) * K))
    columns.append(pa.array([r.sha256 for r in rows], pa.binary(32)))
    columns.append(pa.array(np.array([r.flags for r in rows], dtype=np.uint32)))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _write_rows(path: Path, rows: list[_Row], dims: Dims, embedding_dtype: str) -> ShardInfo:
    path = Path(path)
    batch = _record_batch(rows, dims, embedding_dtype)
    with publishing(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
            writer.write_batch(batch)
        # The Rust reader validates the file and computes the checksums `verify` will recheck.
        info = _core.store_shard_info(str(tmp))
        if info["num_samples"] != len(rows):
            raise RuntimeError(f"{path}: wrote {len(rows)} rows but the reader sees {info['num_samples']}")
    return ShardInfo(path.name, info["num_samples"], info["file_bytes"], info["file_xxh3"], dict(info["columns"]))


def write_shard(
    path: str | os.PathLike[str],
    samples: Iterable[Sample],
    *,
    dims: Dims | Mapping[str, int],
    embedding_dtype: str = "float16",
) -> ShardInfo:
    """Write one shard file atomically and return its manifest entry.

    The file appears at `path` only complete and validated (temp file in the same
    directory, fsync, rename). `dims` is a `Dims` or {"J","S","K","D"}; samples
    are checked against it (ValueError naming the sample). A shard may be empty.
    """
    d = Dims.of(dims)
    check_embedding_dtype(embedding_dtype)
    rows = [_normalize(s, d, embedding_dtype) for s in samples]
    return _write_rows(Path(path), rows, d, embedding_dtype)


def write_manifest(
    store_dir: str | os.PathLike[str],
    shard_infos: Iterable[ShardInfo],
    dims: Dims | Mapping[str, int],
    embedding_dtype: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    tokenizer: str = "openai-clip-bpe",
) -> Path:
    """Write `manifest.json` atomically; shards are listed in the given (global) order.

    Writing the manifest is what makes a directory a store: write it last.
    """
    d = Dims.of(dims)
    check_embedding_dtype(embedding_dtype)
    infos = list(shard_infos)
    names = [i.file for i in infos]
    if len(set(names)) != len(names):
        raise ValueError(f"a shard is listed twice: {names}")
    manifest = {
        "magic": MAGIC,
        "schema_version": SCHEMA_VERSION,
        "dims": d.as_dict(),
        "embedding_dtype": embedding_dtype,
        "tokenizer": tokenizer,
        "num_samples": sum(i.num_samples for i in infos),
        "shards": [i.to_json() for i in infos],
        "metadata": dict(metadata or {}),
    }
    path = Path(store_dir) / MANIFEST_FILE
    write_text_atomic(path, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return path


_STORE_FILE = re.compile(r"^(manifest\.json|shard-\d{5,}\.arrow|\.(manifest\.json|shard-\d{5,}\.arrow)\.tmp-.*)$")


class StoreWriter:
    """Write a store sample by sample, rolling to a new shard every ~`target_shard_bytes`.

    ```
    with StoreWriter(path, J=30, S=5, K=2, D=768) as w:
        for sample in samples:
            w.add(sample)
    ```
    The manifest is written by `close()` (on a clean `with` exit); a writer that
    fails leaves no manifest, so a half-written directory never opens as a store.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        J: int,
        S: int,
        K: int,
        D: int,
        embedding_dtype: str = "float16",
        target_shard_bytes: int = 256 << 20,
        metadata: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.dims = Dims.of((J, S, K, D))
        self.embedding_dtype = check_embedding_dtype(embedding_dtype)
        if target_shard_bytes < 1:
            raise ValueError("target_shard_bytes must be positive")
        self.target_shard_bytes = int(target_shard_bytes)
        self.metadata = dict(metadata or {})
        self._prepare_dir(overwrite)
        self._rows: list[_Row] = []
        self._pending_bytes = 0
        self.shards: list[ShardInfo] = []
        self.closed = False

    def _prepare_dir(self, overwrite: bool) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        existing = [p for p in self.path.iterdir() if _STORE_FILE.match(p.name)]
        others = [p.name for p in self.path.iterdir() if not _STORE_FILE.match(p.name)]
        if (existing or others) and not overwrite:
            raise FileExistsError(f"{self.path} is not empty; pass overwrite=True to replace a store there")
        if overwrite:
            if others:
                raise FileExistsError(f"{self.path} holds files that are not part of a store ({others[:3]}); not deleting")
            # Manifest first, so an interrupted cleanup never leaves a manifest without its shards.
            for p in sorted(existing, key=lambda p: p.name != MANIFEST_FILE):
                p.unlink()

    def add(self, sample: Sample) -> None:
        """Validate and buffer one sample (ValueError names it); writes a shard when enough is buffered."""
        if self.closed:
            raise ValueError("StoreWriter is closed")
        row = _normalize(sample, self.dims, self.embedding_dtype)
        self._rows.append(row)
        self._pending_bytes += row.nbytes()
        if self._pending_bytes >= self.target_shard_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        path = self.path / shard_file_name(len(self.shards))
        self.shards.append(_write_rows(path, self._rows, self.dims, self.embedding_dtype))
        self._rows, self._pending_bytes = [], 0

    @property
    def num_samples(self) -> int:
        return sum(s.num_samples for s in self.shards) + len(self._rows)

    def close(self) -> Path:
        """Write the last shard and the manifest; returns the store path."""
        if not self.closed:
            self._flush()
            write_manifest(self.path, self.shards, self.dims, self.embedding_dtype, self.metadata)
            self.closed = True
        return self.path

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.closed = True  # leave no manifest: the directory is not a store
