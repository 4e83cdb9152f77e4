"""Publish files atomically: write a temp file in the same directory, fsync, rename.

A writer killed before the rename leaves its temp file behind; the name says
which process wrote it, so a later run can remove those whose writer is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
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


# `temp_name`'s form, and the older "<name>.tmp-<pid>" of the converter's done records.
_TEMP_NAME = re.compile(r"\.?.+\.tmp-(?P<pid>\d+)(-[0-9a-f]{8})?")


def _process_exists(pid: int) -> bool:
    if os.name != "posix":
        return True  # no signal-0 probe (Windows' os.kill would terminate the process): keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # another user's process, or not a pid we can ask about
    return True


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[str]:
    """Remove the temp files in `directory` whose writing process no longer exists
    (left by a killed writer); a live process's are kept. Returns the names removed."""
    removed = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        m = _TEMP_NAME.fullmatch(name)
        if m is None or _process_exists(int(m["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, name))
            removed.append(name)
    return removed


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
