"""The ingest tools' only contact with the store writer (``mobileclip_fastload.store``).

``opts``: a tool's options (``ConvertOptions``, ``ReinforceOptions``): their ``dims`` and ``embedding_dtype``.
"""

from __future__ import annotations

import os
from typing import Any

# Re-exported: convert's done records and its stale-temp cleanup use the store's one atomic-file code.
from mobileclip_fastload.store.atomic import remove_stale_temporaries, write_json_atomic  # noqa: F401


def output_name(task_id: str, part: int) -> str:
    """A task's store part file: ``<task_id>-<part:03d>.arrow``."""
    return f"{task_id}-{part:03d}.arrow"


def write_part(path: str, samples: list, opts: Any) -> dict:
    """Write one store shard atomically (the writer validates it); its ShardInfo as JSON. ``opts`` gives
    the dims, the embedding dtype and the store's caption sets, ``(name, S)`` pairs (docs/FORMAT.md,
    "Caption sets"; the writer stores the plain case, one set ``syn_text``, without a key)."""
    from mobileclip_fastload.store import write_shard

    return write_shard(
        path, samples, dims=opts.dims.as_dict(), embedding_dtype=opts.embedding_dtype, caption_sets=opts.caption_sets
    ).to_json()


def verify_output(path: str, info: dict, *, checksum: bool) -> bool:
    """Is an earlier run's store shard still exactly what its done record says?

    ``checksum``: re-open it with the Rust reader (which validates the file) and
    recompute the whole-file and per-column xxh3; else only compare the size.
    """
    try:
        if os.path.getsize(path) != info["file_bytes"]:
            return False
    except OSError:
        return False
    if not checksum:
        return True
    from mobileclip_fastload import _core

    try:
        now = _core.store_shard_info(path)
    except Exception:  # StoreFormatError / ChecksumError / OSError: not intact
        return False
    return (
        now["file_xxh3"] == info["file_xxh3"]
        and now["num_samples"] == info["num_samples"]
        and dict(now["columns"]) == dict(info["columns"])
    )


def write_store_manifest(output: str, infos: list[dict], opts: Any, metadata: dict) -> None:
    """Write the store's manifest last, with the options its parts were written with (``write_part``)."""
    from mobileclip_fastload.store import ShardInfo, write_manifest

    write_manifest(
        output,
        [ShardInfo.from_json(i) for i in infos],
        dims=opts.dims.as_dict(),
        embedding_dtype=opts.embedding_dtype,
        metadata=metadata,  # the default schema (2): shards.idx carries the "<task>-<part>.arrow" names
        caption_sets=opts.caption_sets,
    )
