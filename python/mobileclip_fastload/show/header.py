"""What the page's header says about a store, read from its manifest: how it was made
(teachers, captioner, augmentation settings) as far as the manifest records it."""

from __future__ import annotations

import json
from typing import Any


def teacher_names(manifest: dict[str, Any], K: int) -> list[str]:
    """One label per teacher slice, in row order; from the reinforce metadata when present."""
    teachers = (manifest.get("metadata") or {}).get("reinforce", {}).get("teachers") or []
    if len(teachers) == K:
        names = []
        for t in teachers:
            origin = t.get("pretrained") or f"random init, seed {t.get('init_seed')}"
            names.append(f"{t.get('model')} ({origin})")
        return names
    return [f"teacher {k + 1}" for k in range(K)]


def _model_label(model: Any) -> str:
    if not isinstance(model, dict):
        return str(model)
    origin = model.get("pretrained") or f"random init, seed {model.get('init_seed')}"
    return f"{model.get('name')} ({origin})"


def _captioner_label(c: dict[str, Any]) -> str:
    settings = ", ".join(f"{k} {v}" for k, v in c.items() if k not in ("model", "tag"))
    return f"{c.get('tag')}: {_model_label(c.get('model'))}; {settings}"


def captioner(manifest: dict[str, Any]) -> str:
    """The captioner of the stored synthetic captions: model and sampling settings (the model's
    full config stays in the folded metadata)."""
    metadata = manifest.get("metadata") or {}
    if "reinforce" in metadata:
        r = metadata["reinforce"]
        described = [c for c in r.get("captioners", []) if isinstance(c, dict)]
        if len(described) > 1:  # one caption set per captioner, in the store's caption_sets order
            return " | ".join(_captioner_label(c) for c in described)
        shown = r.get("syn_captions_in_store")
        details = [c for c in described if c.get("tag") == shown]
        return _captioner_label(details[0]) if details else f"{shown}"
    if "converter" in metadata:
        key = metadata["converter"].get("syn_key")  # a list when the store holds several sets
        return f"converted from the shards' {', '.join(key) if isinstance(key, list) else key} captions"
    return "not recorded in the manifest"


def augmentation_settings(manifest: dict[str, Any]) -> str:
    metadata = manifest.get("metadata") or {}
    if "reinforce" in metadata and "augmentation" in metadata["reinforce"]:
        return json.dumps(metadata["reinforce"]["augmentation"], sort_keys=True)
    if "converter" in metadata:
        c = metadata["converter"]
        kept = c.get("max_augmentations")
        return "DataCompDR param_aug, converted" + (f" (the first {kept} per sample kept)" if kept else "")
    return "not recorded in the manifest"


def header_facts(store, teachers: list[str]) -> list[tuple[str, str]]:
    m, d = store.manifest, store.dims
    return [
        ("store", store.path),
        ("samples", f"{len(store)} in {store.num_shards} shard(s)"),
        ("schema", f"{m.get('magic')} v{m.get('schema_version')}, tokenizer {m.get('tokenizer')}"),
        ("J / S / K / D", f"{d['J']} augmentations / {d['S']} synthetic captions / {d['K']} teachers / {d['D']} dims"),
        ("caption sets", ", ".join(f"{name} ({S} captions)" for name, S in store.caption_sets)),
        ("embedding dtype", store.embedding_dtype),
        ("teachers", "; ".join(teachers)),
        ("captioner", captioner(m)),
        ("augmentation", augmentation_settings(m)),
    ]
