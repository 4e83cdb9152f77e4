"""The per-sample members both ingest tools read the same way: a text member (``txt``), a JSON object
member (``json``) and the sample's uid. Each raises ``SkipSample`` with the reason a report counts."""

from __future__ import annotations

import json

from mobileclip_fastload.ingest.skips import BAD_JSON, BAD_TEXT, MISSING_FIELD, SkipSample


def text_member(members: dict[str, bytes], ext: str) -> str:
    if ext not in members:
        raise SkipSample(MISSING_FIELD, f"no {ext} member")
    try:
        return members[ext].decode("utf-8")
    except UnicodeDecodeError as e:
        raise SkipSample(BAD_TEXT, f"{ext} is not UTF-8: {e}") from None


def json_member(members: dict[str, bytes], ext: str) -> dict:
    if ext not in members:
        raise SkipSample(MISSING_FIELD, f"no {ext} member")
    try:
        value = json.loads(members[ext])
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise SkipSample(BAD_JSON, f"{ext}: {type(e).__name__}: {e}") from None
    if not isinstance(value, dict):
        raise SkipSample(BAD_JSON, f"{ext} is a {type(value).__name__}, not an object")
    return value


def sample_uid(dr_json: dict, key: str) -> str:
    """DataComp uid from the DR json, else the tar key (RayGen shards key samples by uid)."""
    uid = dr_json.get("uid")
    if uid is None:
        return key.rsplit("/", 1)[-1]
    if not isinstance(uid, str) or not uid:
        raise SkipSample(BAD_JSON, f"json uid is not a non-empty string: {uid!r}")
    return uid
