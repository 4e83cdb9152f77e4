"""Publish files atomically: write a temp file in the same directory, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file or directory by path (a directory fsync makes a rename durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(final: Path) -> Path:
    """A hidden, unique sibling of `final` (same directory, so rename is atomic)."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def publishing(final: Path) -> Iterator[Path]:
    """Yield a temp path to write; on success fsync it and rename it to `final`; on error remove it."""
    tmp = temp_name(final)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, final)
        fsync_path(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_text_atomic(final: Path, text: str) -> None:
    with publishing(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
