"""Write and describe DR stores (format: docs/FORMAT.md). The format, the writer
and the embedding encodings live in the Rust core (`_core`); this package names
them. The reader is `mobileclip_fastload.Store` (Rust, memory-mapped, zero-copy).
Reading shards with pyarrow/DuckDB/Polars: `mobileclip_fastload.store.interop`."""

from mobileclip_fastload._core import (
    EMBEDDING_DTYPES,
    FLAG_BOXES_RESCALED,
    FLAG_IMAGE_TRANSCODED,
    FLAG_SHA256_VERIFIED,
    MAGIC,
    MANIFEST_FILE,
    MAX_TOKENS,
    SCHEMA_VERSION,
    Dims,
    ShardInfo,
    StoreWriter,
    bf16_bits_to_float32,
    decode_embeddings,
    dequantize_int8,
    encode_embeddings,
    float_to_bf16_bits,
    quantize_int8,
    shard_file_name,
    write_manifest,
    write_shard,
)
from mobileclip_fastload.store.aug import (
    AUG_FLAG_HFLIP,
    AUG_FLAG_NULL,
    aug_record,
    aug_records,
    check_aug,
    null_record,
    rescale_box,
)
from mobileclip_fastload.store.sample import AUG_DTYPE, Sample

__all__ = [
    "AUG_DTYPE",
    "AUG_FLAG_HFLIP",
    "AUG_FLAG_NULL",
    "EMBEDDING_DTYPES",
    "FLAG_BOXES_RESCALED",
    "FLAG_IMAGE_TRANSCODED",
    "FLAG_SHA256_VERIFIED",
    "MAGIC",
    "MANIFEST_FILE",
    "MAX_TOKENS",
    "SCHEMA_VERSION",
    "Dims",
    "Sample",
    "ShardInfo",
    "StoreWriter",
    "aug_record",
    "aug_records",
    "bf16_bits_to_float32",
    "check_aug",
    "decode_embeddings",
    "dequantize_int8",
    "encode_embeddings",
    "float_to_bf16_bits",
    "null_record",
    "quantize_int8",
    "rescale_box",
    "shard_file_name",
    "write_manifest",
    "write_shard",
]


def __getattr__(name: str):
    # `shard_schema` returns a pyarrow object: pyarrow (optional) is imported only when asked for.
    if name == "shard_schema":
        from mobileclip_fastload.store.interop import shard_schema

        return shard_schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
