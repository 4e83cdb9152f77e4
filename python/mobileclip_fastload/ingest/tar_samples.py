"""Reading WebDataset tars: samples as groups of ``key.ext`` members, robust to damage.

A sample is a run of consecutive members sharing a key (the path up to the first
dot of the file name, WebDataset's rule); the extension (lower-cased) names the
field. A tar that breaks part-way (truncated download, corrupt header) yields
everything before the break, the sample it broke in is marked ``truncated``, and
the break is recorded on the reader so the shard report can say so.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

# WebDataset's rule: the key is the path up to the first dot of the base name.
_KEY_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")


class ShardUnreadable(Exception):
    """The whole input shard cannot be read (missing, not a tar, empty, ...)."""


def split_name(name: str) -> tuple[str, str] | None:
    """``"dir/abc.syn.json"`` -> ``("dir/abc", "syn.json")``; None for names without an extension."""
    m = _KEY_EXT.match(name)
    if m is None:
        return None
    key, ext = m.group(1), m.group(2)
    return key, ext.lower()


def named_file_members(tf: tarfile.TarFile, breaks: list[str]) -> Iterator[tuple[tarfile.TarInfo, str, str]]:
    """(member, key, ext) for each regular file with a `key.ext` name, in order.

    A damaged archive still yields what precedes the damage: iteration stops
    there and "breaks after byte N: error" is appended to `breaks`.
    """
    members = iter(tf)
    while True:
        try:
            info = next(members)
        except StopIteration:
            return
        except (tarfile.TarError, OSError, EOFError, ValueError) as e:
            breaks.append(f"breaks after byte {tf.offset}: {e}")
            return
        if not info.isfile():
            continue
        parts = split_name(info.name)
        if parts is not None:
            yield info, *parts


@dataclass
class RawSample:
    key: str
    members: dict[str, bytes] = field(default_factory=dict)
    repeated_exts: list[str] = field(default_factory=list)  # an extension seen twice in one sample
    truncated: bool = False  # the tar broke inside this sample


class TarSampleReader:
    """Iterate the samples of one tar; ``error`` holds the break, if any, after iteration."""

    def __init__(self, path: str):
        self.path = path
        self.error: str | None = None
        self.bytes_read = 0
        try:
            self.size = os.path.getsize(path)
        except OSError as e:
            raise ShardUnreadable(f"cannot stat {path}: {e}") from e

    def __iter__(self) -> Iterator[RawSample]:
        try:
            tf = tarfile.open(self.path, mode="r:")  # noqa: SIM115 -- `with tf` below; open errors told apart
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ShardUnreadable(f"not a readable tar: {path_and_error(self.path, e)}") from e
        with tf:
            current: RawSample | None = None
            breaks: list[str] = []
            for info, key, ext in named_file_members(tf, breaks):
                try:
                    f = tf.extractfile(info)
                    data = f.read() if f is not None else b""
                    if len(data) != info.size:
                        raise EOFError(f"member {info.name} has {len(data)} of {info.size} bytes")
                except (tarfile.TarError, OSError, EOFError) as e:
                    self.error = f"tar breaks inside member {info.name!r}: {e}"
                    if current is not None and current.key == key:
                        current.truncated = True
                    elif current is not None:
                        yield current
                        current = RawSample(key, truncated=True)
                    else:
                        current = RawSample(key, truncated=True)
                    break
                self.bytes_read = info.offset_data + info.size
                if current is None or current.key != key:
                    if current is not None:
                        yield current
                    current = RawSample(key)
                if ext in current.members:
                    current.repeated_exts.append(ext)
                current.members[ext] = data
            if breaks:
                self.error = f"tar {breaks[0]}"
                if current is not None:
                    current.truncated = True
            if self.error is None:
                self.error = end_of_archive_problem(tf, self.size)
                if self.error is not None and current is not None:
                    # Data after this point is lost: the last sample may be incomplete.
                    current.truncated = True
            if current is not None:
                yield current
            self.bytes_read = self.size


def end_of_archive_problem(tf: tarfile.TarFile, size: int) -> str | None:
    """Why iteration stopped early, or None for a proper end-of-archive marker.

    ``tarfile`` silently ends iteration at a truncated or corrupt header after the
    first member, so look at what lies past the last header it could read: a
    complete tar has at least two 512-byte zero blocks there.
    """
    remaining = size - tf.offset
    if remaining < 2 * tarfile.BLOCKSIZE:
        return f"tar ends at byte {size} without an end-of-archive marker (truncated)"
    tf.fileobj.seek(tf.offset)
    tail = tf.fileobj.read(min(remaining, 1 << 20))
    if tail.count(0) != len(tail):
        return f"unreadable tar header at byte {tf.offset}; {remaining} bytes after it are not read"
    return None


def path_and_error(path: str, e: BaseException) -> str:
    return f"{path}: {type(e).__name__}: {e}"


@dataclass
class IndexedSample:
    key: str
    members: dict[str, tuple[int, int]]  # ext -> (offset of data, size)
    json: dict | None  # parsed ``json`` member (img2dataset metadata), None if absent/bad
    json_error: str | None = None


class TarIndex:
    """Random access to the samples of an img2dataset image tar, by uid (or key).

    One pass over the headers records where every member's bytes lie and parses
    the small ``json`` members; image bytes are read on demand with a seek, so a
    multi-GB image shard is never held in memory.
    """

    def __init__(self, path: str):
        self.path = path
        self.error: str | None = None
        self.by_uid: dict[str, IndexedSample] = {}
        self.by_key: dict[str, IndexedSample] = {}
        self.duplicates: list[str] = []
        self._file: BinaryIO | None = None
        samples: list[IndexedSample] = []
        try:
            tf = tarfile.open(path, mode="r:")  # noqa: SIM115 -- `with tf` below; open errors told apart
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ShardUnreadable(f"image shard is not a readable tar: {path_and_error(path, e)}") from e
        with tf:
            breaks: list[str] = []
            for info, key, ext in named_file_members(tf, breaks):
                if not samples or samples[-1].key != key:
                    samples.append(IndexedSample(key, {}, None))
                sample = samples[-1]
                sample.members[ext] = (info.offset_data, info.size)
                if ext == "json":
                    try:
                        f = tf.extractfile(info)
                        raw = f.read() if f is not None else b""
                        parsed = json.loads(raw)
                        sample.json = parsed if isinstance(parsed, dict) else None
                        if sample.json is None:
                            sample.json_error = "json is not an object"
                    except (tarfile.TarError, OSError, EOFError) as e:
                        self.error = f"image tar breaks inside member {info.name!r}: {e}"
                        break
                    except (ValueError, UnicodeDecodeError, RecursionError) as e:
                        sample.json_error = f"bad json: {type(e).__name__}: {e}"
            if breaks:
                self.error = f"image tar {breaks[0]}"
            if self.error is None:
                self.error = end_of_archive_problem(tf, os.path.getsize(path))
        for s in samples:
            uid = s.json.get("uid") if s.json else None
            if s.key in self.by_key:
                self.duplicates.append(s.key)
                continue
            self.by_key[s.key] = s
            if isinstance(uid, str) and uid:
                if uid in self.by_uid:
                    self.duplicates.append(s.key)
                    continue
                self.by_uid[uid] = s

    def lookup(self, uid: str, key: str) -> IndexedSample | None:
        """The image sample for a DR sample: by uid first (DataComp), then by key."""
        return self.by_uid.get(uid) or self.by_key.get(key)

    def read(self, sample: IndexedSample, ext: str) -> bytes:
        offset, size = sample.members[ext]
        if self._file is None:
            self._file = open(self.path, "rb")  # noqa: SIM115 -- kept for the next read, closed by close()
        self._file.seek(offset)
        data = self._file.read(size)
        if len(data) != size:
            raise EOFError(f"{self.path}: member {sample.key}.{ext} has {len(data)} of {size} bytes")
        return data

    def all_samples(self) -> list[IndexedSample]:
        return list(self.by_key.values())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TarIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
