"""Infer the store dims (J, S, K, D) and the synthetic-caption key from the first usable sample.

Every shard of one store must share its dims, so they are fixed once, in the
driver, before any worker starts; samples that disagree are then skipped as
shape mismatches. K (teachers) cannot be read from the data (the embeddings are
the K teachers concatenated), so it is an option (DataCompDR: 2).
"""

from __future__ import annotations

from mobileclip_fastload.convert import fields
from mobileclip_fastload.convert.embeddings import load_embeddings
from mobileclip_fastload.convert.options import DEFAULT_MAX_EMBEDDING_BYTES, Dims
from mobileclip_fastload.ingest.skips import SkipSample
from mobileclip_fastload.ingest.tar_samples import ShardUnreadable, TarSampleReader

PROBE_SAMPLES_PER_SHARD = 32
PROBE_SHARDS = 16


def probe(
    paths: list[str],
    *,
    syn_key: str | None,
    num_teachers: int,
    max_augmentations: int | None,
) -> tuple[Dims, str]:
    problems: list[str] = []
    for path in paths[:PROBE_SHARDS]:
        try:
            for n, raw in enumerate(TarSampleReader(path)):
                if n >= PROBE_SAMPLES_PER_SHARD:
                    break
                try:
                    return _dims_of(raw.members, syn_key, num_teachers, max_augmentations)
                except SkipSample as s:
                    problems.append(f"{path}:{raw.key}: {s}")
                    if "choose one with syn_key" in s.detail:
                        raise ValueError(s.detail) from None
        except ShardUnreadable as e:
            problems.append(str(e))
    shown = "\n  ".join(problems[:5])
    raise ValueError(
        "could not infer the store dims from the first samples (pass dims=(J, S, K, D) to skip probing):\n  " + shown
    )


def _dims_of(members: dict, syn_key: str | None, K: int, max_augmentations: int | None) -> tuple[Dims, str]:
    entries = fields.param_aug(fields.json_member(members, "paug.json"))
    syn = fields.json_member(members, "syn.json")
    key = fields.resolve_syn_key(fields.syn_text_keys(syn), syn_key)
    S = len(fields.syn_captions(syn, key, len(syn.get(key) or [])))
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
    if J < 1 or S < 1:
        raise SkipSample("shape_mismatch", f"J={J}, S={S}: the store needs at least one of each")
    return Dims(J=J, S=S, K=K, D=KD // K), key
