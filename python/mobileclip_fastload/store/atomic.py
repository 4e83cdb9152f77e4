"""Publish files atomically (temp file in the same directory, fsync, rename,
directory fsync): thin names over the one implementation in the Rust core
(`rust/src/store/atomic.rs`), which the store's shards and manifest use too.

A writer killed before the rename leaves its temp file behind; the name says
which process wrote it, so a later run can remove those whose writer is gone
(`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from mobileclip_fastload import _core

__all__ = ["publish", "publishing", "remove_stale_temporaries", "temp_name", "write_json_atomic", "write_text_atomic"]


def temp_name(final: str | os.PathLike[str]) -> Path:
    """A hidden, unique sibling of `final` to write before `publish` (it carries this process's id)."""
    return Path(_core.temp_path(final))


def publish(tmp: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Move the complete file `tmp` to `final` durably; on failure `tmp` is removed."""
    _core.publish_file(tmp, final)


@contextlib.contextmanager
def publishing(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path to write; on success publish it as `final`; on error remove it."""
    tmp = temp_name(final)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish(tmp, final)


def write_text_atomic(final: str | os.PathLike[str], text: str) -> None:
    _core.write_file_atomic(final, text.encode("utf-8"))


def write_json_atomic(final: str | os.PathLike[str], obj: object) -> None:
    """`obj` as JSON at `final` (its directory created if needed), atomically and durably:
    the converter's and reinforce's done records and reports."""
    Path(final).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(final, json.dumps(obj))


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[str]:
    """Remove the temp files in `directory` whose writing process no longer exists
    (left by a killed writer); a live process's are kept. Returns the names removed."""
    return _core.remove_stale_temporaries(directory)
