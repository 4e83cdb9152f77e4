"""Constants and the Arrow schema of a store shard (docs/FORMAT.md).

The Rust reader (rust/src/store/schema.rs) holds the same definition and checks
every shard this package writes against it before the shard is published.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import pyarrow as pa

MAGIC = "mobileclip-fastload/dr-store"
SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
#: CLIP's context length: token lists (SOT and EOT included) are at most this long.
MAX_TOKENS = 77
#: Bytes of one augmentation record (rust/src/aug.rs).
AUG_RECORD_SIZE = 40
EMBEDDING_DTYPES = ("float16", "bfloat16", "int8")

# `flags` column bits.
FLAG_BOXES_RESCALED = 1  #: augmentation boxes were rescaled from the original to the stored size
FLAG_SHA256_VERIFIED = 2  #: sha256 was checked against the stored image bytes


class Dims(NamedTuple):
    """J augmentations, S synthetic captions, K teachers of D dimensions each."""

    J: int
    S: int
    K: int
    D: int

    @classmethod
    def of(cls, dims: Dims | Mapping[str, int] | tuple[int, int, int, int]) -> Dims:
        """Accept a Dims, a {"J","S","K","D"} mapping (as `Store.dims` returns) or a 4-tuple."""
        if isinstance(dims, Mapping):
            try:
                d = cls(*(int(dims[k]) for k in "JSKD"))
            except KeyError as e:
                raise ValueError(f"dims must have keys J, S, K, D; missing {e}") from None
        else:
            d = cls(*(int(x) for x in dims))
        if min(d) < 1:
            raise ValueError(f"dims must all be >= 1, got {d._asdict()}")
        return d

    def as_dict(self) -> dict[str, int]:
        return {"J": self.J, "S": self.S, "K": self.K, "D": self.D}


def check_embedding_dtype(name: str) -> str:
    if name not in EMBEDDING_DTYPES:
        raise ValueError(f"embedding_dtype must be one of {EMBEDDING_DTYPES}, got {name!r}")
    return name


def element_type(embedding_dtype: str) -> pa.DataType:
    """Arrow type of one stored embedding element (bf16 travels as its raw uint16 bits)."""
    return {"float16": pa.float16(), "bfloat16": pa.uint16(), "int8": pa.int8()}[check_embedding_dtype(embedding_dtype)]


def column_names(embedding_dtype: str) -> list[str]:
    names = ["uid", "image", "width", "height", "orig_width", "orig_height", "caption", "caption_tokens",
             "syn_captions", "syn_tokens", "aug", "image_emb", "text_emb"]
    if embedding_dtype == "int8":
        names += ["image_emb_scale", "text_emb_scale"]
    return names + ["sha256", "flags"]


def shard_schema(dims: Dims, embedding_dtype: str) -> pa.Schema:
    """The schema every shard with these dims and dtype has, metadata included."""
    J, S, K, D = dims
    e = element_type(embedding_dtype)
    tokens = pa.list_(pa.uint16())
    fields = [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("image", pa.large_binary(), nullable=False),
        pa.field("width", pa.uint32(), nullable=False),
        pa.field("height", pa.uint32(), nullable=False),
        pa.field("orig_width", pa.uint32(), nullable=False),
        pa.field("orig_height", pa.uint32(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("caption_tokens", tokens, nullable=False),
        pa.field("syn_captions", pa.list_(pa.string(), S), nullable=False),
        pa.field("syn_tokens", pa.list_(tokens, S), nullable=False),
        pa.field("aug", pa.binary(J * AUG_RECORD_SIZE), nullable=False),
        pa.field("image_emb", pa.list_(e, J * K * D), nullable=False),
        pa.field("text_emb", pa.list_(e, (1 + S) * K * D), nullable=False),
    ]
    if embedding_dtype == "int8":
        fields += [
            pa.field("image_emb_scale", pa.list_(pa.float32(), J * K), nullable=False),
            pa.field("text_emb_scale", pa.list_(pa.float32(), (1 + S) * K), nullable=False),
        ]
    fields += [
        pa.field("sha256", pa.binary(32), nullable=True),
        pa.field("flags", pa.uint32(), nullable=False),
    ]
    metadata = {
        "magic": MAGIC,
        "schema_version": str(SCHEMA_VERSION),
        "J": str(J),
        "S": str(S),
        "K": str(K),
        "D": str(D),
        "embedding_dtype": embedding_dtype,
    }
    return pa.schema(fields, metadata=metadata)
