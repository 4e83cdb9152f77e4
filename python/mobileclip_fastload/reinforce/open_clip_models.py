"""Naming and building open_clip models for reinforcement (teachers and captioners).

A model is named like open_clip names it: an architecture (``ViT-L-14``,
``coca_ViT-L-14``, or one from a config file registered with
``open_clip.add_model_config``) plus ``pretrained``: a tag that open_clip
resolves (downloads where the network allows), a weights file, or None for a
random initialisation seeded by ``init_seed`` (tests, benchmarks). Specs are
small frozen dataclasses, so they pickle to worker processes and Ray tasks,
which build (and cache) the model themselves.

Activation: weights are only right with the activation they were trained with.
open_clip's pretrained config of a tag says it (``quick_gelu``: OpenAI's and
DFN's ViT-L-14 were trained with QuickGELU), but open_clip 3.3 builds
``ViT-L-14`` with GELU and only warns, so every embedding would silently be off.
``quick_gelu_of`` decides it (the tag's config, else the model config, else the
spec's explicit ``quick_gelu``), ``build`` builds with it, and a known mismatch is
refused.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

#: open_clip's model registry (``add_model_config`` appends a path and rebuilds a module-level dict by
#: re-reading every registered file) is not thread-safe, and the replay threads reach it through
#: ``captioners.eval_transform``: every registration and lookup holds this lock.
_REGISTRY_LOCK = threading.RLock()


@dataclass(frozen=True)
class OpenClipSpec:
    name: str
    pretrained: str | None = None
    #: an open_clip model config JSON to register first (its file stem is the model name)
    config_file: str | None = None
    #: torch seed of the random initialisation (used when ``pretrained`` is None)
    init_seed: int = 0
    #: QuickGELU (True) or GELU (False); None: as the pretrained tag states, else the model config.
    #: Give it for a weights file trained with QuickGELU, or a random-init twin of a tag's model.
    quick_gelu: bool | None = None

    @classmethod
    def parse(cls, text: str, config_files: tuple[str, ...] = ()) -> OpenClipSpec:
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
        return (
            f"{self.name}:{self.pretrained}" if self.pretrained else f"{self.name} (random init, seed {self.init_seed})"
        )


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def register(spec: OpenClipSpec) -> None:
    with _REGISTRY_LOCK:
        _register(spec)


def _register(spec: OpenClipSpec) -> None:
    import open_clip

    if spec.config_file and spec.name not in open_clip.list_models():
        if _stem(spec.config_file) != spec.name:
            raise ValueError(
                f"config file {spec.config_file} registers model {_stem(spec.config_file)!r}, not {spec.name!r}"
            )
        open_clip.add_model_config(spec.config_file)
    if spec.name not in open_clip.list_models():
        raise ValueError(f"open_clip has no model {spec.name!r}; give its config file (config_file / --model-config)")
    if spec.pretrained and not os.path.isfile(spec.pretrained):
        from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

        if not get_pretrained_cfg(spec.name, spec.pretrained):
            raise ValueError(
                f"{spec.pretrained!r} is neither a weights file nor an open_clip pretrained tag of "
                f"{spec.name} (tags: {list_pretrained_tags_by_model(spec.name)})"
            )


def model_config(spec: OpenClipSpec) -> dict[str, Any]:
    import open_clip

    with _REGISTRY_LOCK:
        _register(spec)
        return open_clip.get_model_config(spec.name)


def tag_quick_gelu(name: str, tag: str) -> bool | None:
    """What open_clip's pretrained config of ``name:tag`` says about QuickGELU (None: not a known tag).
    open_clip itself reads an absent ``quick_gelu`` as False."""
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(name, tag)
    return bool(cfg.get("quick_gelu", False)) if cfg else None


def quick_gelu_of(spec: OpenClipSpec) -> bool:
    """The activation ``spec``'s model is built with; ValueError for a known mismatch (weights
    trained with one activation, a model or an explicit choice with the other)."""
    config_says = bool(model_config(spec).get("quick_gelu", False))
    tag_says = (
        tag_quick_gelu(spec.name, spec.pretrained) if spec.pretrained and not os.path.isfile(spec.pretrained) else None
    )
    if tag_says is not None:
        if spec.quick_gelu is not None and spec.quick_gelu != tag_says:
            raise ValueError(
                f"{spec.describe()}: the weights were trained with {_act(tag_says)} (open_clip's pretrained "
                f"config), but quick_gelu={spec.quick_gelu} asks for {_act(spec.quick_gelu)}"
            )
        if config_says and not tag_says:
            raise ValueError(
                f"{spec.describe()}: model config {spec.name!r} uses QuickGELU, but these weights were "
                f"trained with GELU: use the architecture without '-quickgelu'"
            )
        return tag_says
    if spec.quick_gelu is None:
        return config_says
    if config_says and not spec.quick_gelu:
        raise ValueError(
            f"{spec.describe()}: model config {spec.name!r} uses QuickGELU; quick_gelu=False cannot undo it"
        )
    return spec.quick_gelu


def _act(quick: bool) -> str:
    return "QuickGELU" if quick else "GELU"


def create_kwargs(spec: OpenClipSpec) -> dict[str, Any]:
    """``open_clip.create_model`` arguments besides the name: the pretrained weights and the activation."""
    return {"pretrained": spec.pretrained, "force_quick_gelu": quick_gelu_of(spec)}


def build(spec: OpenClipSpec, device: str, precision: str = "fp32") -> tuple[Any, Any]:
    """(model in eval mode on ``device``, its tokenizer), built once per process, device and precision
    (``"cuda"`` and ``"cuda:0"`` are one device: one build). ``"bf16"``: open_clip's own mixed precision
    (weights cast to bf16 once, LayerNorms kept in fp32), not autocast re-casting fp32 weights every forward."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"build precision must be fp32 or bf16, got {precision!r}")
    return _build(spec, normalise_device(device), precision)


@lru_cache(maxsize=8)
def _build(spec: OpenClipSpec, device: str, precision: str) -> tuple[Any, Any]:
    import open_clip
    import torch

    kwargs = create_kwargs(spec)
    with _REGISTRY_LOCK, torch.random.fork_rng(devices=[]):  # create_model and get_tokenizer read the registry
        torch.manual_seed(spec.init_seed)  # random init before the cast: fp32 and bf16 builds share weights
        model = open_clip.create_model(spec.name, device="cpu", precision=precision, **kwargs)
        tokenizer = open_clip.get_tokenizer(spec.name)
    if spec.pretrained is None:
        initialise_left_empty(model, spec.init_seed)
    return model.to(device).eval().requires_grad_(False), tokenizer


def initialise_left_empty(model, seed: int) -> None:
    """Initialise what open_clip's random init leaves as ``torch.empty`` memory: CoCa's text decoder
    (``MultimodalTransformer``) never calls its ``init_parameters``, so its ``text_projection`` holds
    whatever the allocator returned, sometimes NaN (every caption then fails in ``generate``), and
    differs from build to build. Pretrained weights overwrite it; a random-init model gets the init
    that method means (normal, std = width ** -0.5), drawn in fp32 from ``seed`` whatever the precision."""
    import torch
    from open_clip.transformer import MultimodalTransformer

    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, MultimodalTransformer) and module.text_projection is not None:
            p = module.text_projection
            values = torch.empty(p.shape, dtype=torch.float32).normal_(std=module.width**-0.5, generator=g)
            with torch.no_grad():
                p.copy_(values)


def normalise_device(device: str) -> str:
    """One name per device: ``"cuda"`` -> ``"cuda:<current>"``, so caches keyed by device do not miss."""
    import torch

    if device == "cuda":
        return f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else device
    return device


def preprocess_cfg_of(spec: OpenClipSpec) -> dict[str, Any]:
    """The ``model.visual.preprocess_cfg`` that ``open_clip.create_model`` gives ``spec``'s model, without
    building it: open_clip's defaults, the pretrained tag's settings, the tower's image size."""
    from dataclasses import asdict as as_dict

    from open_clip.pretrained import get_pretrained_cfg
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    cfg = as_dict(PreprocessCfg())
    if spec.pretrained and not os.path.isfile(spec.pretrained):
        cfg = merge_preprocess_dict(cfg, get_pretrained_cfg(spec.name, spec.pretrained))
    size = model_config(spec)["vision_cfg"]["image_size"]
    cfg["size"] = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    return cfg


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
