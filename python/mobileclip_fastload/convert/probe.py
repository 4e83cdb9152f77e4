"""Infer the store dims (J, S, K, D) and the caption sets (syn.json keys, each with its
S_i; S = their sum) from the first usable sample.

Every shard of one store must share its dims, so they are fixed once, in the
driver, before any worker starts; samples that disagree are then skipped as
shape mismatches. K (teachers) cannot be read from the data (the embeddings are
the K teachers concatenated), so it is an option (DataCompDR: 2).
"""

from __future__ import annotations

from collections.abc import Sequence

from mobileclip_fastload.convert import fields
from mobileclip_fastload.convert.embeddings import load_embeddings
from mobileclip_fastload.convert.options import DEFAULT_MAX_EMBEDDING_BYTES, CaptionSets, Dims
from mobileclip_fastload.ingest.skips import SkipSample
from mobileclip_fastload.ingest.tar_samples import ShardUnreadable, TarSampleReader

PROBE_SAMPLES_PER_SHARD = 32
PROBE_SHARDS = 16


def probe(
    paths: list[str],
    *,
    syn_keys: Sequence[str] | None,
    syn_key_regex: str | None,
    num_teachers: int,
    max_augmentations: int | None,
) -> tuple[Dims, CaptionSets]:
    problems: list[str] = []
    for path in paths[:PROBE_SHARDS]:
        try:
            for n, raw in enumerate(TarSampleReader(path)):
                if n >= PROBE_SAMPLES_PER_SHARD:
                    break
                try:
                    return _dims_of(raw.members, syn_keys, syn_key_regex, num_teachers, max_augmentations)
                except SkipSample as s:
                    problems.append(f"{path}:{raw.key}: {s}")
        except ShardUnreadable as e:
            problems.append(str(e))
    shown = "\n  ".join(problems[:5])
    raise ValueError(
        "could not infer the store dims from the first samples (pass dims=(J, S, K, D) to skip probing):\n  " + shown
    )


def _dims_of(
    members: dict, syn_keys: Sequence[str] | None, syn_key_regex: str | None, K: int, max_augmentations: int | None
) -> tuple[Dims, CaptionSets]:
    entries = fields.param_aug(fields.json_member(members, "paug.json"))
    syn = fields.json_member(members, "syn.json")
    sets = tuple(
        (key, len(fields.syn_captions(syn, key, len(syn.get(key) or []))))
        for key in fields.chosen_syn_keys(syn, syn_keys, syn_key_regex)
    )
    S = sum(n for _, n in sets)
    arrays = load_embeddings(members, DEFAULT_MAX_EMBEDDING_BYTES)
    image = arrays.get("image_emb")
    if image is None or image.ndim != 2:
        raise SkipSample("missing_field", "no 2-D image_emb")
    J_src, KD = image.shape
    if KD % K:
        raise ValueError(f"embedding width {KD} is not divisible by num_teachers={K}")
    if J_src != len(entries):
        raise SkipSample("shape_mismatch", f"{len(entries)} param_aug entries but image_emb has {J_src} rows")
    J = min(J_src, max_augmentations) if max_augmentations else J_src
    if J < 1 or min(n for _, n in sets) < 1:
        raise SkipSample("shape_mismatch", f"J={J}, caption sets {sets}: the store needs at least one of each")
    return Dims(J=J, S=S, K=K, D=KD // K), sets
