"""Reinforcement inputs: plain image-text pairs, split into independent shard tasks.

Two kinds of input:

* WebDataset tars (img2dataset output): per sample an image (``jpg``/``jpeg``/
  ``png``/``webp``), its caption (``txt``) and optionally img2dataset's ``json``
  (``uid``, ``url``, ...). One tar = one task. Read with the converter's
  damage-tolerant ``TarSampleReader``.
* a caption table, ``.csv`` (header row) or ``.jsonl``, with an ``image`` column
  (path relative to the table's folder, or to ``image_root``), a ``caption``
  column, and optional ``uid`` and ``url``. Every ``rows_per_shard`` rows form a task.

Both yield the converter's ``RawSample`` (key, members by extension), so the
shard task checks every sample the same way whatever its source.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

from mobileclip_fastload.ingest.images import IMAGE_EXTENSIONS
from mobileclip_fastload.ingest.inputs import expand_inputs, task_ids
from mobileclip_fastload.ingest.tar_samples import RawSample, ShardUnreadable, TarSampleReader

TABLE_SUFFIXES = (".csv", ".jsonl")
DEFAULT_ROWS_PER_SHARD = 10_000


@dataclass(frozen=True)
class ReinforceTask:
    index: int
    task_id: str  # names the outputs: f"{task_id}-{part:03d}.arrow", f"{task_id}.tar"
    input: str  # a tar, or a caption table
    output_dir: str
    row_start: int = 0  # tables only: rows [row_start, row_stop) of the table
    row_stop: int | None = None
    image_root: str | None = None  # tables only: where relative image paths start

    @property
    def is_table(self) -> bool:
        return self.input.lower().endswith(TABLE_SUFFIXES)

    def fingerprint(self) -> dict:
        st = os.stat(self.input)
        return {
            "path": os.path.abspath(self.input),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "rows": [self.row_start, self.row_stop] if self.is_table else None,
            "image_root": os.path.abspath(self.image_root) if self.image_root else None,
        }


def make_tasks(
    inputs, output: str, *, image_root: str | None = None, rows_per_shard: int = DEFAULT_ROWS_PER_SHARD
) -> list[ReinforceTask]:
    paths = expand_inputs(inputs)
    if not paths:
        raise ValueError(f"no inputs match {inputs!r}")
    if rows_per_shard < 1:
        raise ValueError("rows_per_shard must be >= 1")
    ids = task_ids(paths)
    tasks: list[ReinforceTask] = []
    for path, tid in zip(paths, ids):
        if path.lower().endswith(TABLE_SUFFIXES):
            n = count_rows(path)
            for k, start in enumerate(range(0, max(n, 1), rows_per_shard)):
                stop = min(start + rows_per_shard, n)
                tasks.append(ReinforceTask(len(tasks), f"{tid}-{k:05d}", path, output, start, stop, image_root))
        else:
            tasks.append(ReinforceTask(len(tasks), tid, path, output))
    return tasks


def count_rows(path: str) -> int:
    try:
        return sum(1 for _ in _table_rows(path))
    except OSError as e:
        raise ValueError(f"cannot read caption table {path}: {e}") from e


def _table_rows(path: str) -> Iterator[tuple[dict | None, str | None]]:
    """(row, problem) per data row: the parsed row, or None and why it is unusable."""
    if path.lower().endswith(".csv"):
        with open(path, newline="", encoding="utf-8", errors="strict") as f:
            for row in csv.DictReader(f):
                yield row, None
    else:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    yield None, f"bad JSON line: {e}"
                    continue
                yield (row, None) if isinstance(row, dict) else (None, "JSON line is not an object")


class TableSampleReader:
    """Rows ``[start, stop)`` of a caption table as ``RawSample``s (``bytes_read``: image bytes read)."""

    def __init__(self, path: str, start: int, stop: int | None, image_root: str | None):
        if not os.path.isfile(path):
            raise ShardUnreadable(f"cannot read {path}: no such file")
        self.path, self.start, self.stop = path, start, stop
        self.root = image_root or os.path.dirname(os.path.abspath(path))
        self.error: str | None = None
        self.bytes_read = 0
        self.size = 0

    def __iter__(self) -> Iterator[RawSample]:
        for n, (row, problem) in enumerate(_table_rows(self.path)):
            if n < self.start:
                continue
            if self.stop is not None and n >= self.stop:
                break
            key = f"row{n:08d}"
            if row is None:
                yield RawSample(key, {"json": json.dumps({"_problem": problem}).encode()})
                continue
            yield self._sample(key, row)

    def _sample(self, key: str, row: dict) -> RawSample:
        members: dict[str, bytes] = {}
        meta = {k: row[k] for k in ("uid", "url") if isinstance(row.get(k), str) and row[k]}
        image = row.get("image")
        if isinstance(image, str) and image:
            meta.setdefault("uid", image)
            path = image if os.path.isabs(image) else os.path.join(self.root, image)
            ext = os.path.splitext(path)[1].lower().lstrip(".")
            try:
                with open(path, "rb") as f:
                    data = f.read()
                self.bytes_read += len(data)
                # an unknown suffix still goes through as "jpg": Pillow identifies the content, not the name
                members[ext if ext in IMAGE_EXTENSIONS else "jpg"] = data
            except OSError as e:
                meta["_image_problem"] = f"cannot read image {path}: {e}"
        caption = row.get("caption")
        if isinstance(caption, str):
            members["txt"] = caption.encode("utf-8")
        members["json"] = json.dumps(meta).encode("utf-8")
        return RawSample(key, members)


def open_reader(task: ReinforceTask):
    """The sample reader of one task; raises ShardUnreadable when the input cannot be read at all."""
    if task.is_table:
        return TableSampleReader(task.input, task.row_start, task.row_stop, task.image_root)
    return TarSampleReader(task.input)
