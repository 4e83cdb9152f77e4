"""Write and describe DR stores (format: docs/FORMAT.md). The reader is
`mobileclip_fastload.Store` (Rust, memory-mapped, zero-copy)."""

from mobileclip_fastload.store.aug import (
    AUG_FLAG_HFLIP,
    AUG_FLAG_NULL,
    aug_record,
    aug_records,
    check_aug,
    null_record,
    rescale_box,
)
from mobileclip_fastload.store.embeddings import (
    bf16_bits_to_float32,
    dequantize_int8,
    encode_embeddings,
    float_to_bf16_bits,
    quantize_int8,
)
from mobileclip_fastload.store.sample import AUG_DTYPE, Sample
from mobileclip_fastload.store.schema import (
    EMBEDDING_DTYPES,
    FLAG_BOXES_RESCALED,
    FLAG_SHA256_VERIFIED,
    MAGIC,
    MANIFEST_FILE,
    MAX_TOKENS,
    SCHEMA_VERSION,
    Dims,
    shard_schema,
)
from mobileclip_fastload.store.writer import ShardInfo, StoreWriter, shard_file_name, write_manifest, write_shard

__all__ = [
    "AUG_DTYPE",
    "AUG_FLAG_HFLIP",
    "AUG_FLAG_NULL",
    "EMBEDDING_DTYPES",
    "FLAG_BOXES_RESCALED",
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
    "dequantize_int8",
    "encode_embeddings",
    "float_to_bf16_bits",
    "null_record",
    "quantize_int8",
    "rescale_box",
    "shard_file_name",
    "shard_schema",
    "write_manifest",
    "write_shard",
]
