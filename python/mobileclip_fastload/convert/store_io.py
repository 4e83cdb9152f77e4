"""The converter's only contact with the store writer (``mobileclip_fastload.store``)."""

from __future__ import annotations

import os

from mobileclip_fastload.convert.options import ConvertOptions


def _info_dict(info) -> dict:
    if isinstance(info, dict):
        return dict(info)
    if hasattr(info, "as_dict"):
        return info.as_dict()
    if hasattr(info, "to_dict"):
        return info.to_dict()
    from dataclasses import asdict, is_dataclass

    if is_dataclass(info):
        return asdict(info)
    raise TypeError(f"cannot serialise ShardInfo {info!r}")


def write_part(path: str, samples: list, opts: ConvertOptions) -> dict:
    """Write one store shard atomically; its ShardInfo as a JSON-able dict (``file`` = base name)."""
    from mobileclip_fastload.store import write_shard

    info = _info_dict(write_shard(path, samples, dims=opts.dims.as_dict(), embedding_dtype=opts.embedding_dtype))
    info["file"] = os.path.basename(path)
    return info


def verify_output(path: str, info: dict, *, checksum: bool) -> bool:
    """Is an earlier run's store shard still what its done record says?"""
    try:
        if os.path.getsize(path) != info["file_bytes"]:
            return False
    except OSError:
        return False
    if not checksum:
        return True
    from mobileclip_fastload.store import file_xxh3

    return file_xxh3(path) == info["file_xxh3"]


def write_store_manifest(output: str, infos: list[dict], opts: ConvertOptions, metadata: dict) -> None:
    from mobileclip_fastload.store import write_manifest

    write_manifest(output, infos, dims=opts.dims.as_dict(), embedding_dtype=opts.embedding_dtype, metadata=metadata)
