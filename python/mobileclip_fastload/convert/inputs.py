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
from typing import Iterable, Sequence

from mobileclip_fastload.convert.shard_task import ShardTask


def braceexpand(pattern: str) -> list[str]:
    """Shell-style brace expansion: ``{a,b}`` alternatives and ``{0..10}`` / ``{000..010}`` ranges."""
    start = _top_level_brace(pattern)
    if start is None:
        return [pattern]
    end = _matching_close(pattern, start)
    if end is None:
        return [pattern]
    prefix, body, suffix = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    alternatives = _range(body)
    if alternatives is None:
        parts = _split_top_level_commas(body)
        if len(parts) < 2:
            # not an expansion ({x}): keep the braces literally, expand what follows
            return [prefix + "{" + body + "}" + rest for rest in braceexpand(suffix)]
        alternatives = [x for part in parts for x in braceexpand(part)]
    return [prefix + alt + rest for alt in alternatives for rest in braceexpand(suffix)]


def _top_level_brace(s: str) -> int | None:
    i = s.find("{")
    return i if i >= 0 else None


def _matching_close(s: str, start: int) -> int | None:
    depth = 0
    for i in range(start, len(s)):
        if s[i] == "{":
            depth += 1
        elif s[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _split_top_level_commas(body: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur.append(ch)
    parts.append("".join(cur))
    return parts


_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$")


def _range(body: str) -> list[str] | None:
    m = _RANGE.match(body)
    if m is None:
        return None
    a, b = m.group(1), m.group(2)
    step = abs(int(m.group(3))) if m.group(3) else 1
    step = step or 1
    lo, hi = int(a), int(b)
    padded = (len(a.lstrip("-")) > 1 and a.lstrip("-").startswith("0")) or (
        len(b.lstrip("-")) > 1 and b.lstrip("-").startswith("0")
    )
    width = max(len(a), len(b)) if padded else 0
    values = range(lo, hi + 1, step) if lo <= hi else range(lo, hi - 1, -step)
    return [str(v).zfill(width) if width else str(v) for v in values]


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Every input shard path, in order, duplicates removed (first occurrence kept)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out: list[str] = []
    for item in inputs:
        for path in braceexpand(os.fspath(item)):
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


def make_tasks(inputs, output: str, *, layout: str, image_shards=None) -> list[ShardTask]:
    paths = expand_inputs(inputs)
    if not paths:
        raise ValueError(f"no input shards match {inputs!r}")
    image_paths: list[str | None] = [None] * len(paths)
    if layout == "separate":
        if image_shards is None:
            raise ValueError("layout='separate' needs image_shards (img2dataset tars)")
        expanded = expand_inputs(image_shards)
        if not expanded:
            raise ValueError(f"no image shards match {image_shards!r}")
        image_paths = pair_image_shards(paths, expanded)
    elif image_shards is not None:
        raise ValueError("image_shards is only used with layout='separate'")
    ids = task_ids(paths)
    return [ShardTask(i, ids[i], p, image_paths[i], output) for i, p in enumerate(paths)]
