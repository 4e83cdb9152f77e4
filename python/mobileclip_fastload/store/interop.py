"""Reading stores with other Arrow tools (pyarrow, DuckDB, Polars): a store shard is
a plain Arrow IPC file. Needs the optional `interop` extra
(`pip install mobileclip-fastload[interop]`); the rest of the package does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mobileclip_fastload import _core

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["shard_schema"]


def shard_schema(
    dims: _core.Dims | Mapping[str, int] | tuple[int, int, int, int],
    embedding_dtype: str,
    caption_sets: Sequence[tuple[str, int]] | None = None,
) -> pa.Schema:
    """The pyarrow schema every shard with these dims, dtype and caption sets (``Store.caption_sets``)
    has, metadata included (the Rust core's definition, read from an empty Arrow IPC file it writes)."""
    try:
        import pyarrow as pa
    except ImportError as e:
        raise ImportError("shard_schema needs pyarrow: pip install 'mobileclip-fastload[interop]'") from e
    return pa.ipc.open_file(pa.py_buffer(_core.shard_schema_ipc(dims, embedding_dtype, caption_sets))).schema
