"""`verify` of a store of any size: a block of shards at a time (each block checked in parallel by the
core), with a progress bar, and resumable: with a state file, the shards already checked and the
problems found are saved atomically after every block, and a rerun skips them."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Any

from mobileclip_fastload.store.atomic import write_json_atomic

STATE_FORMAT = "mobileclip-fastload/verify-state-1"


def verify(
    location: str | os.PathLike[str],
    *,
    state: str | os.PathLike[str] | None = None,
    block: int = 256,
    progress: bool | None = None,
    **store_options: Any,
) -> list[str]:
    """Verify every shard of the store at `location` (a directory or URL); returns one message per problem.

    state: a JSON file recording progress; an existing one for this store (same location and shard count)
        is resumed, a missing one is created. block: shards checked between two saves of the state.
    progress: show a progress bar on stderr (default: when stderr is a terminal).
    store_options: passed to `Store` (cache_dir, storage_options, ...).
    """
    from mobileclip_fastload import Store

    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    store = Store(location, **store_options)
    shards = store.num_shards
    done = bytearray((shards + 7) // 8)
    problems: list[str] = []
    key = str(location)
    state_path = Path(state) if state is not None else None
    if state_path is not None and state_path.exists():
        import json

        saved = json.loads(state_path.read_text(encoding="utf-8"))
        if saved.get("format") != STATE_FORMAT or saved.get("location") != key or saved.get("num_shards") != shards:
            raise ValueError(
                f"{state_path}: a verify state for another store ({saved.get('location')!r}, "
                f"{saved.get('num_shards')} shards); this one is {key!r} with {shards}"
            )
        done = bytearray(base64.b64decode(saved["done"]))
        problems = list(saved["problems"])
    todo = [n for n in range(shards) if not done[n // 8] >> (n % 8) & 1]
    bar = None
    if progress if progress is not None else sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=shards, initial=shards - len(todo), unit="shard", desc="verify", file=sys.stderr)
    try:
        for at in range(0, len(todo), block):
            chunk = todo[at : at + block]
            for n, found in zip(chunk, store.verify_shards(chunk), strict=True):
                problems.extend(found)
                done[n // 8] |= 1 << (n % 8)
            if state_path is not None:
                write_json_atomic(
                    state_path,
                    {
                        "format": STATE_FORMAT,
                        "location": key,
                        "num_shards": shards,
                        "done": base64.b64encode(bytes(done)).decode(),
                        "problems": problems,
                    },
                )
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    # Names are unique within each index block as read; across blocks only a pass over all names tells.
    return problems + store.repeated_shard_names()
