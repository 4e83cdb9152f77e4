"""What `convert` and `reinforce` may do with the folder they write a store into.

A store is someone's data. A tool:
- writes into a missing or empty folder (creating it only once its inputs have been
  read, so a run that fails before writing leaves nothing behind);
- resumes its own unfinished run (its done records are there, no manifest yet), and
  re-runs over its own finished store only as the same run or an extension of it
  (every done record matches one of this run's inputs under the same options: the
  re-run checks, repairs and adds, it replaces nothing);
- otherwise refuses with `StoreExistsError`, naming the folder and what is there: a
  finished store, another tool's run, or files that belong to no store. With
  ``overwrite`` it first removes a store's files and either tool's run state (the
  manifest first, so an interrupted cleanup never leaves a manifest without its
  shards); files that belong to no store are never deleted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mobileclip_fastload import StoreExistsError
from mobileclip_fastload._core import INDEX_FILE, MANIFEST_FILE

# Each tool's run state in its output folder: done records, and what else it writes.
TOOL_DIRS = {"convert": ("_convert_done",), "reinforce": ("_reinforce_done", "_captions")}
TOOL_FILES = {
    "convert": ("convert_report.json",),
    "reinforce": ("reinforce_report.json", "reinforce_captions_report.json"),
}


@dataclass
class OutputFolder:
    """What a tool found in its output folder before writing."""

    path: str
    tool: str
    exists: bool = False
    finished: bool = False  # a manifest: a complete store
    own_run: bool = False  # this tool's done records
    other_tools: list[str] = field(default_factory=list)
    store_files: list[str] = field(default_factory=list)  # shards, manifest, reports, temporaries
    unknown: list[str] = field(default_factory=list)  # belong to no store: never deleted

    @property
    def empty(self) -> bool:
        return not (self.store_files or self.unknown or self.own_run or self.other_tools)

    def describe(self) -> str:
        if self.finished:
            shards = sum(1 for n in self.store_files if n.endswith(".arrow"))
            maker = _manifest_maker(self.path)
            what = f"a finished store ({MANIFEST_FILE} and {shards} shard files{', made by ' + maker if maker else ''})"
        elif self.other_tools:
            what = f"an unfinished {' and '.join(self.other_tools)} run ({', '.join(self._dirs(self.other_tools))})"
        else:
            what = f"store files {sorted(self.store_files)[:3]}"
        return what

    @staticmethod
    def _dirs(tools: Iterable[str]) -> list[str]:
        return [d + "/" for t in tools for d in TOOL_DIRS[t]]


def _manifest_maker(path: str) -> str | None:
    try:
        with open(os.path.join(path, MANIFEST_FILE), encoding="utf-8") as f:
            meta = json.load(f).get("metadata") or {}
    except (OSError, ValueError, AttributeError):
        return None
    for key in ("converter", "reinforce", "reinforcer"):
        tool = meta.get(key, {}).get("tool") if isinstance(meta.get(key), dict) else None
        if tool:
            return str(tool)
    return None


def _is_store_file(name: str) -> bool:
    return (
        name in (MANIFEST_FILE, INDEX_FILE)
        or name.endswith(".arrow")
        or any(name in files for files in TOOL_FILES.values())
        or _is_temporary(name)
    )


def _is_temporary(name: str) -> bool:
    # The atomic writer's temporaries: ".<name>.tmp-<pid>-<hex>" (older done records: "<name>.tmp-<pid>").
    return ".tmp-" in name


def survey(path: str, tool: str) -> OutputFolder:
    """Look at `path` without changing anything."""
    folder = OutputFolder(path=path, tool=tool)
    if not os.path.exists(path):
        return folder
    if not os.path.isdir(path):
        raise StoreExistsError(errno.EEXIST, f"{path}: is a file, not a folder to write a store into", path)
    folder.exists = True
    names = os.listdir(path)
    tool_of_dir = {d: t for t, dirs in TOOL_DIRS.items() for d in dirs}
    for name in names:
        owner = tool_of_dir.get(name)
        if owner == tool:
            folder.own_run = True
        elif owner is not None:
            if owner not in folder.other_tools:
                folder.other_tools.append(owner)
        elif _is_store_file(name) and os.path.isfile(os.path.join(path, name)):
            folder.store_files.append(name)
        else:
            folder.unknown.append(name)
    # Another tool's report alone also marks its run.
    for other, files in TOOL_FILES.items():
        if other != tool and other not in folder.other_tools and any(f in names for f in files):
            folder.other_tools.append(other)
    folder.finished = MANIFEST_FILE in names
    return folder


def _refuse(folder: OutputFolder, what: str, hint: str) -> StoreExistsError:
    return StoreExistsError(errno.EEXIST, f"{folder.path}: holds {what}; {folder.tool} {hint}", folder.path)


def check_before_reading(folder: OutputFolder, overwrite: bool) -> None:
    """The refusals that need no inputs read: files of no store; another tool's run."""
    if folder.unknown:
        listed = ", ".join(repr(n) for n in sorted(folder.unknown)[:3])
        more = f" and {len(folder.unknown) - 3} more" if len(folder.unknown) > 3 else ""
        raise _refuse(
            folder,
            f"files that are not part of a store ({listed}{more})",
            "never deletes them: choose an empty or new folder",
        )
    if folder.other_tools and not overwrite:
        raise _refuse(
            folder,
            folder.describe(),
            "does not replace another tool's files: pass overwrite=True (--overwrite) to replace them",
        )
    if not folder.own_run and not overwrite and (folder.finished or folder.store_files):
        raise _refuse(
            folder,
            folder.describe(),
            "does not replace a store it did not start: pass overwrite=True (--overwrite) to replace it",
        )


def check_rerun(folder: OutputFolder, overwrite: bool, same_run: Callable[[], bool]) -> None:
    """A finished store of this tool is re-run only as the same run (`same_run`: every done
    record matches this run's inputs and options, and there are no others)."""
    if folder.finished and not overwrite and not same_run():
        raise _refuse(
            folder,
            folder.describe(),
            "replaces a finished store only when told to (its inputs or options differ from this run's): "
            "pass overwrite=True (--overwrite) to replace it",
        )


def prepare(folder: OutputFolder, overwrite: bool) -> None:
    """Create the folder; with `overwrite`, first remove what the checks allowed replacing."""
    path = folder.path
    if overwrite and folder.exists and not folder.empty:
        # The manifest first: an interrupted cleanup never leaves a manifest without its shards.
        names = sorted(folder.store_files, key=lambda n: n != MANIFEST_FILE)
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, name))
        for tool in [folder.tool, *folder.other_tools]:
            for d in TOOL_DIRS[tool]:
                shutil.rmtree(os.path.join(path, d), ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def done_records_match(done_dir: str, expected: dict[str, Callable[[dict], bool]]) -> bool:
    """Whether every record in `done_dir` is one this run expects (file name -> a check of
    the record's fingerprint) and passes its check. Records this run adds may be missing (more
    inputs extend the store, dropping none of it); a record this run does not make means the
    re-run would drop that part of the store."""
    try:
        present = {n for n in os.listdir(done_dir) if n.endswith(".json") and not _is_temporary(n)}
    except OSError:
        return False
    if not present <= set(expected):
        return False
    for name in present:
        matches = expected[name]
        try:
            with open(os.path.join(done_dir, name), encoding="utf-8") as f:
                if not matches(json.load(f)["fingerprint"]):
                    return False
        except (OSError, ValueError, KeyError, TypeError):
            return False
    return True
