"""Resuming, for every ingest tool: a task's done record, what it must match, and the removal of what a
killed run of the task left behind.

A task's done record (``<output>/<done dir>/<name>.json``) is written last and atomically; it holds the
fingerprint (input, options), the shard report and the sizes of the task's other files (reinforce's
DataCompDR tar, captions). A re-run keeps the task only when all of that still holds and its store parts
pass the check (``verify_output``: size, or the reader's checksums); otherwise the task is redone from
scratch, after ``remove_task_files`` removed its done record, its outputs and their temporaries.

Temporaries are recognised by the one temp-name rule, the Rust core's (``_core.temp_target``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mobileclip_fastload import _core
from mobileclip_fastload.ingest.report import RESUMED, ShardReport
from mobileclip_fastload.ingest.store_io import verify_output, write_json_atomic

R = TypeVar("R", bound=ShardReport)
INPUT_GONE_NOTE = "input no longer readable; the earlier conversion of it is kept"


def done_record_path(output_dir: str, done_dir: str, name: str) -> str:
    """``<output_dir>/<done_dir>/<name>.json``: ``name`` is the task id (and stage, for reinforce)."""
    return os.path.join(output_dir, done_dir, f"{name}.json")


def input_fingerprint(path: str | None) -> dict | None:
    """An input file as a done record remembers it (path, size, mtime); OSError when it cannot be read."""
    if path is None:
        return None
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_done_record(path: str, fingerprint: dict, report: ShardReport, files: dict[str, int] | None = None) -> None:
    """The proof that a task finished, written last and atomically. ``files``: other outputs -> their sizes."""
    record: dict[str, Any] = {"fingerprint": fingerprint, "report": report.as_dict()}
    if files is not None:
        record["files"] = files
    write_json_atomic(path, record)


def _file_intact(path: str, size: int | None) -> bool:
    try:
        return os.path.getsize(path) == size
    except OSError:
        return False


def finished_report(
    record_path: str,
    report_type: type[R],
    output_dir: str,
    verify: str,
    fingerprint: Callable[[], dict],
    *,
    compared: Callable[[dict], dict] = lambda f: f,
    when_input_gone: Callable[[dict], dict] | None = None,
) -> R | None:
    """The report of an earlier run of a task (status ``resumed``), if its done record at ``record_path``
    matches ``fingerprint()`` (both seen through ``compared``) and its outputs are intact; else None (the
    task must run). ``verify``: ``"checksum"`` or ``"size"`` for the store parts.

    ``fingerprint()`` raises OSError when the input cannot be read: the task then runs, unless
    ``when_input_gone(earlier fingerprint)`` gives the fingerprint to compare instead (convert keeps a
    conversion whose input was deleted if it was made under the same options; the report says so)."""
    try:
        with open(record_path) as f:
            record = json.load(f)
        earlier = record["fingerprint"]
        report = report_type.from_dict(record["report"])
        files = record.get("files", {})
        input_gone = False
        try:
            expected = fingerprint()
        except OSError:
            if when_input_gone is None:
                return None
            input_gone, expected = True, when_input_gone(earlier)
        if compared(earlier) != compared(expected):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for info in report.outputs:
        if not verify_output(os.path.join(output_dir, info["file"]), info, checksum=(verify == "checksum")):
            return None
    if not all(_file_intact(path, size) for path, size in files.items()):
        return None
    report.status = RESUMED
    if input_gone:
        report.tar_problem = f"{report.tar_problem}; {INPUT_GONE_NOTE}" if report.tar_problem else INPUT_GONE_NOTE
    return report


def is_store_part(name: str, task_id: str) -> bool:
    """Whether ``name`` is one of the task's store parts (``store_io.output_name``: ``<task_id>-<part>.arrow``)."""
    return re.fullmatch(re.escape(task_id) + r"-\d{3,}\.arrow", name) is not None


def remove_task_files(folder: str, is_task_file: Callable[[str], bool], *, finals: bool = True) -> list[str]:
    """Remove from ``folder`` the temporaries of the task's files (any writer: a re-run redoes the task) and,
    with ``finals``, the files themselves; ``is_task_file(final name)`` says which are the task's. A missing
    folder has none. Returns the names removed."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        target = _core.temp_target(name)
        if is_task_file(target) if target is not None else finals and is_task_file(name):
            try:
                os.unlink(os.path.join(folder, name))
            except FileNotFoundError:
                continue
            removed.append(name)
    return sorted(removed)


def remove_done_record(record_path: str) -> None:
    Path(record_path).unlink(missing_ok=True)
