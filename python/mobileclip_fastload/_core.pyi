"""Type stubs for the compiled module ``mobileclip_fastload._core``."""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, final

import numpy as np
import numpy.typing as npt

from mobileclip_fastload.store.sample import Sample

__version__: str
__all__ = [
    "AUG_FLAG_HFLIP",
    "AUG_FLAG_NULL",
    "AUG_MAX_OPS_PER_ENTRY",
    "AUG_NUM_OPS",
    "AUG_OP_NAMES",
    "AUG_RECORD_FIELDS",
    "AUG_RECORD_SIZE",
    "DECODE_MAX_PIXELS",
    "DEFAULT_CAPTION_SET",
    "DEFAULT_WRITE_SCHEMA",
    "EMBEDDING_DTYPES",
    "FLAG_BOXES_RESCALED",
    "FLAG_IMAGE_TRANSCODED",
    "FLAG_SHA256_VERIFIED",
    "INDEX_FILE",
    "MAGIC",
    "MANIFEST_FILE",
    "MAX_LOADER_THREADS",
    "MAX_TOKENS",
    "PIXEL_REFERENCE",
    "SCHEMA_VERSION",
    "BatchMemory",
    "ChecksumError",
    "Dims",
    "EpochRun",
    "FastloadError",
    "ImageDecodeError",
    "LoaderCore",
    "MappedShard",
    "RemoteStoreError",
    "SampleIndexError",
    "SchemaVersionError",
    "ShardInfo",
    "Store",
    "StoreExistsError",
    "StoreFormatError",
    "StoreIOError",
    "StoreNotFoundError",
    "StoreWriter",
    "__version__",
    "bench_stage_times",
    "bf16_bits_to_float32",
    "check_aug_records",
    "decode_aug_record",
    "decode_embeddings",
    "decode_rgb",
    "dequantize_int8",
    "encode_aug_record",
    "encode_aug_records",
    "encode_embeddings",
    "epoch_indices",
    "float_to_bf16_bits",
    "is_url",
    "kernel_level",
    "parse_param_aug",
    "publish_file",
    "quantize_int8",
    "remove_stale_temporaries",
    "replay_augmentation",
    "replay_augmentations",
    "rescale_box",
    "set_portable_kernels",
    "shard_file_name",
    "shard_schema_ipc",
    "store_shard_info",
    "temp_path",
    "temp_target",
    "verify_store",
    "write_file_atomic",
    "write_manifest",
    "write_shard",
]

class FastloadError(Exception): ...
class StoreFormatError(FastloadError): ...
class SchemaVersionError(StoreFormatError): ...
class ChecksumError(FastloadError): ...
class ImageDecodeError(FastloadError): ...
class SampleIndexError(FastloadError, IndexError): ...
class StoreIOError(FastloadError, OSError): ...
class StoreNotFoundError(StoreIOError, FileNotFoundError): ...
class StoreExistsError(StoreIOError, FileExistsError): ...
class RemoteStoreError(FastloadError, OSError): ...

# --- store (rust/src/python/store.rs) -----------------------------------------

@final
class Store:
    """A read-only, memory-mapped DR store. Arrays are zero-copy read-only views that keep the store alive.

    Sample indices may be negative (from the end); out of range raises SampleIndexError.
    Embedding views are float16, uint16 (raw bfloat16 bits) or int8 (with `*_scales`), per `embedding_dtype`.
    """

    def __new__(
        cls,
        path: str | PathLike[str],
        *,
        cache_dir: str | PathLike[str] | None = None,
        cache_size: int | None = None,
        storage_options: dict[str, str] | None = None,
    ) -> Store:
        """`path`: a store directory (opening reads only manifest.json; a shard is
        mapped and validated when first used), or a URL (s3://, gs://, az://,
        http(s)://, file://) whose shards are downloaded into `cache_dir`
        (docs/REMOTE.md). No store at `path` raises StoreNotFoundError (a
        FileNotFoundError), as FastReinforcedLoader does."""
    def __len__(self) -> int: ...
    def __getitem__(self, i: int, /) -> Sample: ...
    def __iter__(self) -> Iterator[Sample]: ...
    @property
    def path(self) -> str:
        """The directory or URL as opened."""
    @property
    def local_dir(self) -> Path:
        """Where the shard files are mapped from (a remote store's cache directory)."""
    @property
    def shards_mapped(self) -> int:
        """Shard mappings made so far (0 right after open)."""
    @property
    def dims(self) -> dict[str, int]:
        """{"J": augmentations, "S": synthetic captions, "K": teachers, "D": dims per teacher}"""
    @property
    def embedding_dtype(self) -> str: ...
    @property
    def caption_sets(self) -> list[tuple[str, int]]:
        """(name, S) per synthetic caption set in storage order; [("syn_text", S)] for a one-set store."""
    @property
    def num_shards(self) -> int: ...
    def shard_entry(self, n: int) -> dict[str, Any]:
        """Shard n's entry: {"file", "num_samples", "file_bytes", "file_xxh3", "columns"}
        (schema 2: from shards.idx)."""
    @property
    def file_bytes(self) -> int:
        """Bytes of all shard files together, as the manifest (or shard index) states them."""
    @property
    def manifest(self) -> dict[str, Any]:
        """The parsed manifest.json (schema 2: the header; shard entries via `shard_entry`)."""
    def column_bytes(self) -> dict[str, int]: ...
    def cache_stats(self) -> dict[str, int] | None:
        """Remote stores: {"bytes_downloaded", "downloads", "failed_attempts", "evictions"}; else None."""
    def shard_path(self, i: int) -> str:
        """The file (or object URL) of the shard holding sample i."""
    def uid(self, i: int) -> str: ...
    def image(self, i: int) -> npt.NDArray[np.uint8]: ...
    def image_size(self, i: int) -> tuple[int, int]:
        """(width, height) of the stored image."""
    def orig_size(self, i: int) -> tuple[int, int]:
        """(width, height) of the original image."""
    def caption(self, i: int) -> str: ...
    def caption_tokens(self, i: int) -> npt.NDArray[np.uint16]: ...
    def syn_captions(self, i: int) -> list[str]: ...
    def syn_tokens(self, i: int, s: int) -> npt.NDArray[np.uint16]: ...
    def aug(self, i: int) -> np.ndarray:
        """AUG_DTYPE [J]"""
    def image_emb(self, i: int, j: int) -> np.ndarray:
        """[K*D] row of augmentation j"""
    def image_embs(self, i: int) -> np.ndarray:
        """[J, K*D]"""
    def text_emb(self, i: int) -> np.ndarray:
        """[1+S, K*D]; row 0 is the real caption"""
    def image_emb_scales(self, i: int) -> npt.NDArray[np.float32] | None:
        """int8 stores: [J, K]; otherwise None"""
    def text_emb_scales(self, i: int) -> npt.NDArray[np.float32] | None:
        """int8 stores: [1+S, K]; otherwise None"""
    def sha256(self, i: int) -> bytes | None: ...
    def flags(self, i: int) -> int: ...
    def sample(self, i: int) -> Sample: ...
    def advise(self, pattern: str) -> None:
        """Read-ahead hint for the embedding columns: "random" (default), "sequential" or "normal"."""
    def verify(self) -> list[str]:
        """Recheck every checksum; one message per problem, empty when intact."""
    def verify_shards(self, shards: list[int]) -> list[list[str]]:
        """`verify` for these shards only: one list of problem messages per shard, in the order given."""
    def repeated_shard_names(self) -> list[str]:
        """Problems of shards whose file name repeats an earlier shard's (the whole-store part of `verify`)."""

@final
class MappedShard:
    """Keeps one mapped shard alive while numpy views into it exist (the base of those arrays)."""

def is_url(location: str) -> bool:
    """Whether `location` is an object store URL (`scheme://...`) rather than a local path."""

def epoch_indices(
    num_samples: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    start: int = 0,
    count: int | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
    shard_sizes: list[int] | None = None,
    window: int = 1,
) -> list[int]:
    """The loader's order: rank `rank`'s sample indices at epoch positions [start, start + count); with
    `shard_sizes`, the shard_block order with `window`, else the global order. O(count) work and memory."""

def verify_store(path: str | PathLike[str]) -> list[str]:
    """Verify a store directory without opening it; one message per problem (shard, column, what)."""

def store_shard_info(path: str | PathLike[str]) -> dict[str, Any]:
    """Validate one shard file; {"num_samples", "file_bytes", "file_xxh3", "columns", "dims", "embedding_dtype",
    "caption_sets"}."""

# --- augmentation record (rust/src/python/aug.rs) ----------------------------

AUG_RECORD_SIZE: int
#: (name, numpy format, byte offset) of every field of the record, in order
AUG_RECORD_FIELDS: tuple[tuple[str, str, int], ...]
AUG_FLAG_NULL: int
AUG_FLAG_HFLIP: int
AUG_NUM_OPS: int
#: torchvision's RandAugment op names by stored op index
AUG_OP_NAMES: tuple[str, ...]
AUG_MAX_OPS_PER_ENTRY: int

def encode_aug_record(box: Any, ops: Any = None, *, null: bool = False, hflip: bool = False) -> npt.NDArray[np.uint8]:
    """One record's 40 bytes from a box (top, left, height, width) and up to two (op index, magnitude)."""

def encode_aug_records(
    param_aug: Any, *, width: int, height: int, orig_width: int | None = None, orig_height: int | None = None
) -> tuple[npt.NDArray[np.uint8], bool]:
    """40 bytes per entry of a `param_aug` list or its JSON text, boxes rescaled to the stored size;
    and whether rescaled."""

def parse_param_aug(param_aug: Any) -> list[Any]:
    """Checked, normalised entries: None or [[top, left, height, width], [[op, magnitude], ...]]."""

def rescale_box(box: Any, orig_size: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Map (top, left, height, width) between (width, height) sizes: edges rounded half up, exact."""

def check_aug_records(data: bytes) -> None:
    """ValueError naming the first invalid 40-byte record."""

def decode_aug_record(record: bytes) -> dict[str, Any]:
    """{"top", "left", "height", "width", "ops", "is_null", "hflip"} of one valid record."""

# --- store format and writer (rust/src/python/{format,writer,embeddings,atomic}.rs) ---

MAGIC: str
SCHEMA_VERSION: int
MANIFEST_FILE: str
INDEX_FILE: str  # schema 2's shard index, beside manifest.json
DEFAULT_WRITE_SCHEMA: int  # the manifest schema writers produce unless told otherwise
MAX_TOKENS: int
DEFAULT_CAPTION_SET: str  # the name of a store's one caption set when it lists none ("syn_text")
EMBEDDING_DTYPES: tuple[str, ...]
FLAG_BOXES_RESCALED: int
FLAG_SHA256_VERIFIED: int
FLAG_IMAGE_TRANSCODED: int

@final
class Dims:
    """J augmentations, S synthetic captions, K teachers of D dimensions each (all >= 1)."""

    def __new__(cls, J: int, S: int, K: int, D: int) -> Dims: ...
    @classmethod
    def of(cls, dims: Dims | Mapping[str, int] | Sequence[int]) -> Dims:
        """Accept a Dims, a {"J","S","K","D"} mapping (as `Store.dims` returns) or a 4-tuple."""
    @property
    def J(self) -> int: ...
    @property
    def S(self) -> int: ...
    @property
    def K(self) -> int: ...
    @property
    def D(self) -> int: ...
    @property
    def KD(self) -> int:
        """Elements of one embedding row: K*D."""
    def as_dict(self) -> dict[str, int]: ...
    def __iter__(self) -> Iterator[int]: ...
    def __len__(self) -> int: ...
    def __getnewargs__(self) -> tuple[int, int, int, int]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ShardInfo:
    """What the manifest records about one shard."""

    def __new__(
        cls, file: str, num_samples: int, file_bytes: int, file_xxh3: str, columns: dict[str, str] | None = None
    ) -> ShardInfo: ...
    @property
    def file(self) -> str: ...
    @property
    def num_samples(self) -> int: ...
    @property
    def file_bytes(self) -> int: ...
    @property
    def file_xxh3(self) -> str: ...
    @property
    def columns(self) -> dict[str, str]:
        """Column name -> xxh3-64 of its byte range (16 hex digits)."""
    def to_json(self) -> dict[str, Any]: ...
    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ShardInfo: ...
    def __reduce__(self) -> tuple[type[ShardInfo], tuple[str, int, int, str, dict[str, str]]]: ...
    def __eq__(self, other: object, /) -> bool: ...

def shard_file_name(n: int) -> str:
    """The name of shard `n` in a store directory ("shard-00000.arrow")."""

def shard_schema_ipc(
    dims: Dims | Mapping[str, int] | Sequence[int],
    embedding_dtype: str,
    caption_sets: Sequence[tuple[str, int]] | None = None,
) -> bytes:
    """The shard schema (metadata included) as an Arrow IPC file holding no rows."""

@final
class StoreWriter:
    """Write a store sample by sample, rolling to a new shard every ~`target_shard_bytes`.

    The manifest is written by `close()` (on a clean `with` exit); a writer that
    fails leaves no manifest, so a half-written directory never opens as a store.
    """

    def __new__(
        cls,
        path: str | PathLike[str],
        *,
        J: int,
        S: int,
        K: int,
        D: int,
        embedding_dtype: str = "float16",
        target_shard_bytes: int = 268435456,
        metadata: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        schema_version: int = ...,  # DEFAULT_WRITE_SCHEMA (2)
        caption_sets: Sequence[tuple[str, int]] | None = None,  # (name, S) pairs; None or [("syn_text", S)]: plain
    ) -> StoreWriter: ...
    def add(self, sample: Sample) -> None:
        """Validate and buffer one sample (ValueError names it); writes a shard when enough is buffered."""
    def close(self) -> Path:
        """Write the last shard and the manifest; returns the store path."""
    def __enter__(self) -> StoreWriter: ...
    def __exit__(self, exc_type: object, _exc: object, _tb: object) -> None: ...
    @property
    def path(self) -> Path: ...
    @property
    def dims(self) -> Dims: ...
    @property
    def embedding_dtype(self) -> str: ...
    @property
    def caption_sets(self) -> list[tuple[str, int]]: ...
    @property
    def target_shard_bytes(self) -> int: ...
    @property
    def metadata(self) -> dict[str, Any]: ...
    @property
    def shards(self) -> list[ShardInfo]:
        """The shards written so far."""
    @property
    def closed(self) -> bool: ...
    @property
    def num_samples(self) -> int:
        """Samples added so far (written or buffered)."""

def write_shard(
    path: str | PathLike[str],
    samples: Iterable[Sample],
    *,
    dims: Dims | Mapping[str, int] | Sequence[int],
    embedding_dtype: str = "float16",
    caption_sets: Sequence[tuple[str, int]] | None = None,
) -> ShardInfo:
    """Write one shard file atomically (validated before it is published) and return its manifest entry."""

def write_manifest(
    store_dir: str | PathLike[str],
    shard_infos: Iterable[ShardInfo],
    dims: Dims | Mapping[str, int] | Sequence[int],
    embedding_dtype: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    tokenizer: str = "openai-clip-bpe",
    schema_version: int = ...,  # DEFAULT_WRITE_SCHEMA (2)
    caption_sets: Sequence[tuple[str, int]] | None = None,  # as the shards were written with
) -> Path:
    """Write `manifest.json` atomically (schema 2: `shards.idx` first); shards in (global) order. Write it last."""

def encode_embeddings(
    x: npt.ArrayLike,
    embedding_dtype: str,
    k: int,
    scales: npt.ArrayLike | None = None,
    *,
    what: str = "embedding",
) -> tuple[np.ndarray, npt.NDArray[np.float32] | None]:
    """Embeddings [rows, K*D] as stored: (values, int8 scales [rows, K] or None)."""

def decode_embeddings(
    values: npt.ArrayLike, embedding_dtype: str, scales: npt.ArrayLike | None = None
) -> npt.NDArray[np.float32]:
    """Stored embedding values -> float32."""

def float_to_bf16_bits(x: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """float -> bfloat16 bit patterns, round to nearest even (finite input)."""

def bf16_bits_to_float32(bits: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """bfloat16 bit patterns -> float32 (exact)."""

def quantize_int8(x: npt.ArrayLike, k: int) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """[rows, K*D] float -> (int8 [rows, K*D], float32 scales [rows, K])."""

def dequantize_int8(q: npt.ArrayLike, scales: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """int8 [rows, K*D] and scales [rows, K] -> float32 [rows, K*D]."""

def temp_path(final_path: str | PathLike[str]) -> Path:
    """A hidden, unique sibling of `final_path` to write before `publish_file` (it carries this process's id)."""

def temp_target(name: str) -> str | None:
    """The final name a temp file named `name` is for (`.<name>.tmp-<pid>-<8 hex>` or `<name>.tmp-<pid>`); else None."""

def publish_file(tmp: str | PathLike[str], final_path: str | PathLike[str]) -> None:
    """fsync `tmp`, rename it to `final_path`, fsync the directory; on failure `tmp` is removed."""

def write_file_atomic(final_path: str | PathLike[str], data: bytes) -> None:
    """Write `data` to `final_path` atomically and durably."""

def remove_stale_temporaries(directory: str | PathLike[str]) -> list[str]:
    """Remove the temp files in `directory` whose writing process is gone; returns the names removed."""

# --- imaging (exact replay of Pillow + torchvision, the versions in PIXEL_REFERENCE) ---

PIXEL_REFERENCE: dict[str, str]
"""The distributions and versions whose pixels the replay equals, e.g. {"pillow": "13.0.0", "torchvision": "0.29.2"}."""
DECODE_MAX_PIXELS: int
"""Decoders refuse images with more pixels: Pillow's ``DecompressionBombError`` limit, 2 * MAX_IMAGE_PIXELS."""

def decode_rgb(data: bytes, /, *, max_pixels: int | None = None) -> npt.NDArray[np.uint8]:
    """Decode JPEG/PNG bytes to [H, W, 3] uint8, identical to
    ``np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))``.

    Raises ImageDecodeError for undecodable, truncated, unsupported (not JPEG/PNG)
    or oversized images (more than ``max_pixels``, default ``DECODE_MAX_PIXELS``,
    Pillow's bomb limit). The GIL is released while decoding.
    """

def replay_augmentation(
    data: bytes,
    top: int,
    left: int,
    height: int,
    width: int,
    ops: list[tuple[int, float]],
    size: int,
    interpolation: str = "bicubic",
    hflip: bool = False,
    *,
    partial_decode: bool = True,
    dct_scaling: float | None = None,
) -> npt.NDArray[np.uint8]:
    """Decode and replay one augmentation: crop box (top, left, height, width)
    in image pixels (black padding outside the image), resize to size x size
    ("bicubic", the training replay's resampling for students and teachers, or
    "bilinear"), optional horizontal flip, then up to two RandAugment
    ``(op_index, magnitude)`` pairs in order (op indices as in
    ``AUG_OP_NAMES``). Returns [size, size, 3] uint8, bit-identical to
    ``mobileclip_fastload.reference.reference_replay``. The GIL is released.
    JPEGs are decoded only around the crop (pixel-identical to a full decode);
    ``partial_decode=False`` decodes them whole (for benchmarking).
    ``dct_scaling=r`` turns on a fast mode that is NOT bit-exact: a JPEG crop
    at least ``r * size * d`` pixels on both sides is decoded at 1/d
    resolution (d = 8, 4 or 2, DCT-domain scaling) before the resize.
    """

def replay_augmentations(
    data: bytes,
    entries: list[tuple[int, int, int, int, list[tuple[int, float]], bool] | None],
    size: int,
    interpolation: str = "bicubic",
) -> npt.NDArray[np.uint8]:
    """Decode ``data`` once and replay several augmentations of it (as
    reinforcement replays its J entries): each entry is ``(top, left, height,
    width, ops, hflip)`` or ``None`` (null: the whole image resized, no ops).
    Returns [len(entries), size, size, 3] uint8; entry k is bit-identical to
    ``replay_augmentation`` of that entry. JPEGs are decoded over the union of
    the regions the boxes read. The GIL is released.
    """

def set_portable_kernels(on: bool) -> str:
    """Force the portable pixel kernels (True) or go back to the default
    (False: the best the CPU supports, unless the environment variable
    ``MOBILECLIP_FASTLOAD_PORTABLE=1`` is set), process-wide; returns the
    kernel set now in use ("avx2" or "portable"). For tests and benchmarks.
    """

def kernel_level() -> str:
    """The pixel kernel set in use: "avx2" or "portable"."""

def bench_stage_times(
    cases: list[tuple[bytes, int, int, int, int, list[tuple[int, float]]]],
    size: int,
    interpolation: str,
    image_dtype: str,
    rounds: int,
) -> dict[str, float]:
    """Benchmark hook (benches/bench_per_core.py): replay each case ``rounds``
    times as the loader does and return seconds per sample of each stage
    ("decode", "resize", "ops", "write" of a batch row in ``image_dtype``
    "float32" or "uint8") and in total, plus "samples"."""

# -- loader -------------------------------------------------------------------
MAX_LOADER_THREADS: int

@final
class BatchMemory:
    """Owns one batch's memory while numpy arrays / tensors view it."""
    @property
    def images_address(self) -> int: ...

@final
class LoaderCore:
    """The loader's Rust core; every keyword of ``FastReinforcedLoader`` but
    ``pin_memory``, all required (the Python signature holds the defaults).
    Every setting is checked here: ValueError (out of range, unknown name,
    listing the valid ones) or TypeError (wrong type), naming the argument."""
    def __new__(
        cls,
        store: str | PathLike[str],
        *,
        batch_size: int,
        image_size: int,
        interpolation: str,
        mean: Sequence[float],
        std: Sequence[float],
        image_dtype: str,
        embedding_output_dtype: str,
        num_threads: int | None,
        seed: int,
        shuffle: bool,
        drop_last: bool,
        rank: int,
        world_size: int,
        caption_mode: str,
        mix_probability: float,
        prefetch: int | None,
        on_error: str,
        dct_scaling: float | None,
        cache_dir: str | PathLike[str] | None,
        cache_size: int | None,
        storage_options: dict[str, str] | None,
        order: str,
        shuffle_window: int,
        caption_sets: Callable[[list[str]], Sequence[int]] | None,
    ) -> LoaderCore:
        """``caption_sets``: called with the store's caption set names once the store is open, returns
        the indices of the sets to draw from (None: every set)."""
    def config(self) -> dict[str, Any]:
        """The checked settings: batch_size, image_size, image_dtype, embedding_output_dtype, seed,
        shuffle, drop_last, rank, world_size, num_threads, prefetch, caption_sets (indices drawn from)."""
    def caption_sets(self) -> list[tuple[str, int]]:
        """The store's caption sets as (name, S) pairs in storage order."""
    def check_epoch(self, epoch: int) -> int:
        """`epoch` as the loader counts epochs (ValueError unless in [0, 2**64 - 1])."""
    def order(self) -> str:
        """ "global" or "shard_block:<window>" """
    def cache_stats(self) -> dict[str, int] | None: ...
    def num_batches(self) -> int: ...
    def num_samples(self) -> int: ...
    def batch_capacity(self) -> int:
        """Rows one batch buffer holds: batch_size, or this rank's samples per epoch if fewer."""
    def dims(self) -> dict[str, int]: ...
    def start_epoch(self, epoch: int, start: int) -> EpochRun:
        """A new, independent pass over `epoch` from batch `start` (its own worker threads)."""
    def skipped(self) -> list[dict[str, Any]]:
        """Each sample replaced because its image did not decode, once: index, uid, reason, replacement."""
    def num_skipped(self) -> int: ...
    def samples_produced(self) -> int: ...
    def buffers_allocated(self) -> int: ...

@final
class EpochRun:
    """One pass over one epoch. Batches and errors come strictly in batch order."""
    def next_batch(self) -> dict[str, Any] | None:
        """Arrays: images, text, syn_text, image_emb, text_emb, syn_text_emb, index,
        aug_index, syn_index, caption_set, text_is_syn; plus epoch, batch_number, memory."""
    def stop(self) -> None:
        """Stop this pass's workers now (also done when it is dropped)."""
