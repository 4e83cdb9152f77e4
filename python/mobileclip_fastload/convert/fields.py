"""Parsing DataCompDR's own per-sample members: the DR json's sha256, syn.json, paug.json (txt, json and
the uid: ``ingest.members``, shared with ``reinforce``).

Each parser raises ``SkipSample`` with the reason a report needs (missing field,
bad JSON, bad text, bad augmentation entry, shape mismatch) and returns plain
Python values in the shape the rest of the converter expects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from mobileclip_fastload._core import parse_param_aug
from mobileclip_fastload.ingest.members import json_member, sample_uid, text_member  # noqa: F401 (convert's names)
from mobileclip_fastload.ingest.skips import (
    BAD_AUGMENTATION,
    BAD_JSON,
    MISSING_FIELD,
    SHAPE_MISMATCH,
    SkipSample,
)
from mobileclip_fastload.store import caption_sets

_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def dr_sha256(dr_json: dict) -> bytes | None:
    """The DR json's sha256 as 32 bytes; None when absent or null."""
    v = dr_json.get("sha256")
    if v is None or v == "":
        return None
    if not isinstance(v, str) or not _SHA256_HEX.match(v):
        raise SkipSample(BAD_JSON, f"json sha256 is not 64 hex digits: {str(v)[:80]!r}")
    return bytes.fromhex(v)


def chosen_syn_keys(syn: dict, names: Sequence[str] | None, regex: str | None) -> list[str]:
    """The syn.json keys (caption sets) a conversion stores, as this sample's syn.json offers them.

    ``names``: full keys or tags, in the given order; else the keys ``regex`` picks (Apple's
    rule, ``mobileclip_fastload.store.caption_sets``; default every ``syn_text*`` key) in name
    order. A sample without them raises ``SkipSample`` (the probe then tries the next one)."""
    if names:
        found = [caption_sets.find_set(n, syn) for n in names]
        missing = [n for n, f in zip(names, found) if f is None]
        if missing:
            raise SkipSample(MISSING_FIELD, f"syn.json has no {missing[0]!r} (has {sorted(syn)})")
        if len(set(found)) != len(found):
            raise ValueError(f"syn_key names a caption set twice: {list(names)} -> {found}")
        return found  # type: ignore[return-value]
    picked = sorted(caption_sets.matching_sets(regex or caption_sets.DEFAULT_SET_REGEX, syn))
    if not picked:
        raise SkipSample(MISSING_FIELD, f"syn.json has no key matching {regex or caption_sets.DEFAULT_SET_REGEX!r}")
    return picked


def syn_captions(syn: dict, key: str, S: int) -> list[str]:
    caps = syn.get(key)
    if caps is None:
        raise SkipSample(MISSING_FIELD, f"syn.json has no {key!r}")
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise SkipSample(BAD_JSON, f"syn.json {key!r} is not a list of strings")
    if len(caps) != S:
        raise SkipSample(SHAPE_MISMATCH, f"syn.json {key!r} has {len(caps)} captions, expected {S}")
    return caps


def param_aug(paug: dict) -> list:
    """The ``param_aug`` list (accepting a JSON string, as HF ``datasets`` delivers it), validated."""
    value = paug.get("param_aug")
    if value is None:
        raise SkipSample(MISSING_FIELD, "paug.json has no param_aug")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as e:
            raise SkipSample(BAD_JSON, f"paug.json param_aug string is not JSON: {e}") from None
    if not isinstance(value, list):
        raise SkipSample(BAD_JSON, f"paug.json param_aug is a {type(value).__name__}, not a list")
    try:  # the store's own entry rule (rust/src/aug/param_aug.rs); the error names the entry
        return parse_param_aug(value)
    except ValueError as e:
        raise SkipSample(BAD_AUGMENTATION, str(e)) from None
