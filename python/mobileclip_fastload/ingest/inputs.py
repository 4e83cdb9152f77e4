"""Which input shards, in which order, paired with which image shards, named how.

Inputs are brace patterns (``shards/{00000000..00001023}.tar``, ``{a,b}``,
nested), directories (their ``*.tar``, sorted), globs, or explicit paths, alone
or in a list. A path that does not exist stays in the list: its task reports it
as unreadable instead of the whole conversion failing.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence

from braceexpand import UnbalancedBracesError, braceexpand


def expand_braces(pattern: str) -> list[str]:
    """Bash-style brace expansion (the ``braceexpand`` package, as webdataset uses it):
    ``{a,b}`` alternatives, ``{0..10}`` / ``{000..010}`` / ``{0..10..2}`` ranges, nested.
    Backslashes are path characters, not escapes. A pattern with unbalanced braces is
    kept as one literal path, like any other path that may not exist."""
    try:
        return list(braceexpand(pattern, escape=False))
    except UnbalancedBracesError:
        return [pattern]


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Every input shard path, in order, duplicates removed (first occurrence kept)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out: list[str] = []
    for item in inputs:
        for path in expand_braces(os.fspath(item)):
            if os.path.isdir(path):
                out += sorted(glob.glob(os.path.join(path, "*.tar")))
            elif any(ch in path for ch in "*?[") and not os.path.exists(path):
                out += sorted(glob.glob(path))
            else:
                out.append(path)
    seen: set[str] = set()
    unique = []
    for p in out:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for ext in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return os.path.splitext(name)[0]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "shard"


def task_ids(paths: Sequence[str]) -> list[str]:
    """File-name-safe, unique ids: the shard stem, or its path below the common folder when stems repeat."""
    stems = [_safe(_stem(p)) for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    absolute = [os.path.abspath(p) for p in paths]
    root = os.path.commonpath([os.path.dirname(p) for p in absolute]) if absolute else ""
    ids = []
    for p in absolute:
        rel = os.path.relpath(p, root)
        without_ext = os.path.join(os.path.dirname(rel), _stem(rel))
        ids.append(_safe(without_ext.replace(os.sep, "__")))
    if len(set(ids)) != len(ids):  # still clashing (odd names): number them
        ids = [f"{i:06d}-{s}" for i, s in enumerate(stems)]
    return ids


def pair_image_shards(dr_paths: Sequence[str], image_paths: Sequence[str]) -> list[str]:
    """The image shard for each DR shard: same stem (DataComp keeps the shard assignment),
    else the same position when both lists have the same length."""
    by_stem: dict[str, str] = {}
    for p in image_paths:
        by_stem.setdefault(_stem(p), p)
    stems = [_stem(p) for p in dr_paths]
    if len(by_stem) == len(image_paths) and all(s in by_stem for s in stems):
        return [by_stem[s] for s in stems]
    if len(image_paths) == len(dr_paths):
        return list(image_paths)
    raise ValueError(
        f"cannot pair {len(dr_paths)} DR shards with {len(image_paths)} image shards: "
        "give image shards with the same file names (stems) or the same number in the same order"
    )
