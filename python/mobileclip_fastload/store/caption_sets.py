"""Caption set names and how they are picked, in one place for ``convert`` (picking
``syn.json`` keys) and the loader (picking a store's sets).

A set is named as DataCompDR / DFNDR name its ``syn.json`` key: ``syn_text`` (legacy, and
the name of a store's plain set), ``syn_text_<tag>`` for tagged sets. A user may name a set
by its full name or by its tag alone.

A regular expression picks the names Apple's v2 training patch picks with its
``--dataset-reinforcement-syn-text-key-regex``: Python's ``re.match(pattern, name)``,
anchored at the start of the name only (``syn_text_d`` picks ``syn_text_dfn``; write
``...$`` to anchor the end), default ``^syn_text.*$`` (every ``syn_text*`` set).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from mobileclip_fastload._core import DEFAULT_CAPTION_SET

#: The one set of legacy DataCompDR, and the name of the set of a store without ``caption_sets`` (the core's rule).
PLAIN_SET_NAME = DEFAULT_CAPTION_SET
#: Apple's default ``--dataset-reinforcement-syn-text-key-regex``: every ``syn_text*`` set.
DEFAULT_SET_REGEX = r"^syn_text.*$"


def tagged_set_name(tag: str) -> str:
    """The set name of a tag: ``syn_text_<tag>`` (DataCompDR's and RayGen's key for a tagged set)."""
    return f"{PLAIN_SET_NAME}_{tag}"


def set_name(name_or_tag: str) -> str:
    """A name as given (``syn_text``, ``syn_text_<tag>``), or a bare tag as ``syn_text_<tag>``."""
    return name_or_tag if name_or_tag.startswith(PLAIN_SET_NAME) else tagged_set_name(name_or_tag)


def find_set(name_or_tag: str, available: Iterable[str]) -> str | None:
    """The available set that ``name_or_tag`` names (its full name first, then ``syn_text_<tag>``); None if none."""
    names = set(available)
    for candidate in (name_or_tag, tagged_set_name(name_or_tag)):
        if candidate in names:
            return candidate
    return None


def resolve_set_names(requested: Sequence[str], available: Sequence[str]) -> list[str]:
    """Each requested name or tag as one of ``available``, in the requested order.

    ValueError naming the unknown one and the available names, or a set named twice."""
    if isinstance(requested, str):
        raise TypeError("requested must be a sequence of names; a str is a regular expression (select_sets)")
    if not requested:
        raise ValueError(f"no caption set named (available: {list(available)})")
    out = []
    for r in requested:
        found = find_set(r, available)
        if found is None:
            raise ValueError(f"no caption set {r!r} (available: {list(available)})")
        if found in out:
            raise ValueError(f"caption set {found!r} is named twice in {list(requested)}")
        out.append(found)
    return out


def compile_set_regex(pattern: str) -> re.Pattern[str]:
    """The compiled pattern; ValueError naming it when it is not a regular expression."""
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"caption set regex {pattern!r} is not a regular expression: {e}") from None


def matching_sets(pattern: str | re.Pattern[str], available: Iterable[str]) -> list[str]:
    """The available names the pattern picks, as Apple's loader picks them (``re.match``), in the given order."""
    compiled = compile_set_regex(pattern) if isinstance(pattern, str) else pattern
    return [name for name in available if compiled.match(name)]


def select_sets(pattern: str, available: Sequence[str]) -> list[str]:
    """``matching_sets``, refusing a pattern that picks none (ValueError listing the available names)."""
    picked = matching_sets(pattern, available)
    if not picked:
        raise ValueError(f"caption set regex {pattern!r} matches none of the caption sets {list(available)}")
    return picked
