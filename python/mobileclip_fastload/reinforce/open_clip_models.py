"""Naming and building open_clip models for reinforcement (teachers and captioners).

A model is named like open_clip names it: an architecture (``ViT-L-14``,
``coca_ViT-L-14``, or one from a config file registered with
``open_clip.add_model_config``) plus ``pretrained``: a tag that open_clip
resolves (downloads where the network allows), a weights file, or None for a
random initialisation seeded by ``init_seed`` (tests, benchmarks). Specs are
small frozen dataclasses, so they pickle to worker processes and Ray tasks,
which build (and cache) the model themselves.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class OpenClipSpec:
    name: str
    pretrained: str | None = None
    #: an open_clip model config JSON to register first (its file stem is the model name)
    config_file: str | None = None
    #: torch seed of the random initialisation (used when ``pretrained`` is None)
    init_seed: int = 0

    @classmethod
    def parse(cls, text: str, config_files: tuple[str, ...] = ()) -> "OpenClipSpec":
        """``"NAME"`` or ``"NAME:PRETRAINED"`` (a tag or a weights file); ``config_files``
        supplies the config of a NAME that is no built-in open_clip model."""
        name, _, pretrained = text.partition(":")
        if not name:
            raise ValueError(f"model spec {text!r} has no model name (NAME or NAME:PRETRAINED)")
        config = next((c for c in config_files if _stem(c) == name), None)
        return cls(name, pretrained or None, os.path.abspath(config) if config else None)

    def fingerprint(self) -> dict:
        d = asdict(self)
        if self.config_file:
            with open(self.config_file, encoding="utf-8") as f:
                d["config"] = f.read()
        if self.pretrained and os.path.isfile(self.pretrained):
            st = os.stat(self.pretrained)
            d["weights"] = {"path": os.path.abspath(self.pretrained), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        return d

    def describe(self) -> str:
        return f"{self.name}:{self.pretrained}" if self.pretrained else f"{self.name} (random init, seed {self.init_seed})"


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def register(spec: OpenClipSpec) -> None:
    import open_clip

    if spec.config_file and spec.name not in open_clip.list_models():
        if _stem(spec.config_file) != spec.name:
            raise ValueError(f"config file {spec.config_file} registers model {_stem(spec.config_file)!r}, not {spec.name!r}")
        open_clip.add_model_config(spec.config_file)
    if spec.name not in open_clip.list_models():
        raise ValueError(f"open_clip has no model {spec.name!r}; give its config file (config_file / --model-config)")
    if spec.pretrained and not os.path.isfile(spec.pretrained):
        from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

        if not get_pretrained_cfg(spec.name, spec.pretrained):
            raise ValueError(f"{spec.pretrained!r} is neither a weights file nor an open_clip pretrained tag of "
                             f"{spec.name} (tags: {list_pretrained_tags_by_model(spec.name)})")


def model_config(spec: OpenClipSpec) -> dict[str, Any]:
    import open_clip

    register(spec)
    return open_clip.get_model_config(spec.name)


@lru_cache(maxsize=8)
def build(spec: OpenClipSpec, device: str) -> tuple[Any, Any]:
    """(model in eval mode on ``device``, its tokenizer), built once per process."""
    import open_clip
    import torch

    register(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.init_seed)
        model = open_clip.create_model(spec.name, pretrained=spec.pretrained, device="cpu")
    model = model.to(device).eval().requires_grad_(False)
    return model, open_clip.get_tokenizer(spec.name)


def preprocess_cfg(model) -> dict[str, Any]:
    """The image side of ``model``: size (square), interpolation, mean, std (open_clip's own)."""
    cfg = dict(model.visual.preprocess_cfg)
    size = cfg["size"]
    if isinstance(size, (tuple, list)):
        if len(size) != 2 or size[0] != size[1]:
            raise ValueError(f"only square image sizes are supported, the model wants {size}")
        size = size[0]
    return {
        "size": int(size),
        "interpolation": str(cfg.get("interpolation", "bicubic")),
        "mean": tuple(float(v) for v in cfg["mean"]),
        "std": tuple(float(v) for v in cfg["std"]),
    }
