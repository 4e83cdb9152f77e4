"""Tiny random-init open_clip models for reinforcement tests and examples: a CoCa
captioner and two CLIP teachers of different image sizes. Nothing is downloaded:
each is an open_clip model config written to a folder (registered with
``open_clip.add_model_config`` by whoever builds it) and ``pretrained=None``."""

from __future__ import annotations

import json
import os

from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec

_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}

TINY_CONFIGS = {
    "tiny-clip-a": {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": _TEXT,
    },
    "tiny-clip-b": {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 40, "layers": 1, "width": 32, "head_width": 16, "patch_size": 10},
        "text_cfg": _TEXT,
    },
    "tiny-coca": {
        "embed_dim": 32,  # CoCa's decoder reads image tokens of this width: equal to multimodal_cfg.width
        "vision_cfg": {
            "image_size": 32,
            "layers": 1,
            "width": 32,
            "head_width": 16,
            "patch_size": 8,
            "attentional_pool": True,
            "attn_pooler_queries": 9,
            "attn_pooler_heads": 2,
            "output_tokens": True,
        },
        "text_cfg": {**_TEXT, "context_length": 76, "embed_cls": True, "output_tokens": True},
        "multimodal_cfg": {
            "context_length": 76,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 1,
            "attn_pooler_heads": 2,
        },
        "custom_text": True,
    },
}


def write_tiny_configs(folder: str | os.PathLike) -> dict[str, str]:
    """Write the configs as ``<name>.json`` into ``folder``; returns name -> path."""
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for name, cfg in TINY_CONFIGS.items():
        path = os.path.join(os.fspath(folder), f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=1)
        paths[name] = os.path.abspath(path)
    return paths


def tiny_specs(folder: str | os.PathLike) -> tuple[OpenClipSpec, tuple[OpenClipSpec, OpenClipSpec]]:
    """(captioner spec, (teacher a, teacher b)), random init with fixed seeds."""
    paths = write_tiny_configs(folder)
    coca = OpenClipSpec("tiny-coca", None, paths["tiny-coca"], init_seed=1)
    return coca, (
        OpenClipSpec("tiny-clip-a", None, paths["tiny-clip-a"], init_seed=2),
        OpenClipSpec("tiny-clip-b", None, paths["tiny-clip-b"], init_seed=3),
    )
