"""Build MobileCLIP models by name, randomly initialised (nothing is downloaded).

=====================  ==========================  ===============================  =====
name                   image tower                 text tower                       input
=====================  ==========================  ===============================  =====
MobileCLIP-S0          MCi0 (timm fastvit_mci0)    MCt (mobileclip_fastload_train.models.mct)        256
MobileCLIP-S1          MCi1 (timm, via open_clip)  base 12-layer (open_clip)        256
MobileCLIP-S2          MCi2 (timm, via open_clip)  base 12-layer (open_clip)        256
MobileCLIP-B           ViT-B/16 MCi (timm)         base 12-layer, causal (open_clip) 224
MobileCLIP2-S0         MCi0 (timm, via open_clip)  base 12-layer, no causal mask    256
MobileCLIP2-S2         MCi2 (timm, via open_clip)  base 12-layer, no causal mask    256
MobileCLIP2-B          ViT-B/16 MCi (timm)         base 12-layer, causal            224
MobileCLIP2-S3         MCi3, 5 stages (timm)       12-layer width 768, no mask      256
MobileCLIP2-S4         MCi4, 5 stages (timm)       12-layer width 768, no mask      256
MobileCLIP2-L-14       ViT-L/14 (timm)             12-layer width 768, no mask      224
tiny-S0 / tiny-S1      scaled-down MCi             scaled-down MCt / base           64
=====================  ==========================  ===============================  =====

The MobileCLIP2 models are open_clip's ``MobileCLIP2-*`` configs (open_clip >= 3.2; the
MCi3/MCi4 towers need timm >= 1.0.20), so Apple's released checkpoints (open_clip state
dicts) load into them (``mobileclip_fastload_train.models.checkpoints``).

The ``tiny-*`` models keep every block type of their full-size counterpart
(RepMixer stages, attention stage, SE, Text-RepMixer, ...) at a size that
trains on a CPU in minutes; they are for tests and small experiments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import open_clip
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transformer import TextTransformer
from torch import nn

from mobileclip_fastload_train.models.clip import CLIPModel, Preprocess
from mobileclip_fastload_train.models.image_tower import mci, tiny_mci
from mobileclip_fastload_train.models.mct import MCt, MCtConfig

_OPENAI = dict(mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD)

#: Training preprocessing of each full-size model (what the loader must replay for it):
#: the size and the mean/std of the released configs (open_clip's pretrained configs:
#: v1 and MobileCLIP2-S0/S2/B mean 0 / std 1; MobileCLIP2-S3/S4/L-14 OpenAI's), replayed
#: bicubic at that size as Apple's training transform does (see ``Preprocess``).
PREPROCESS = {
    "MobileCLIP-S0": Preprocess(image_size=256),
    "MobileCLIP-S1": Preprocess(image_size=256),
    "MobileCLIP-S2": Preprocess(image_size=256),
    "MobileCLIP-B": Preprocess(image_size=224),
    "MobileCLIP2-S0": Preprocess(image_size=256),
    "MobileCLIP2-S2": Preprocess(image_size=256),
    "MobileCLIP2-B": Preprocess(image_size=224),
    "MobileCLIP2-S3": Preprocess(image_size=256, **_OPENAI),
    "MobileCLIP2-S4": Preprocess(image_size=256, **_OPENAI),
    "MobileCLIP2-L-14": Preprocess(image_size=224, **_OPENAI),
}
_OPEN_CLIP_MODELS = tuple(name for name in PREPROCESS if name != "MobileCLIP-S0")


def _s0(**_: Any) -> CLIPModel:
    pre = PREPROCESS["MobileCLIP-S0"]
    return CLIPModel(mci("fastvit_mci0", 512, pre.image_size), MCt(MCtConfig()), pre, "MobileCLIP-S0")


def _open_clip(name: str) -> Callable[..., CLIPModel]:
    def build(device: str | torch.device = "cpu", **_: Any) -> CLIPModel:
        # open_clip warns that no pretrained weights were loaded: that is the intent here.
        # device="meta" builds the structure without memory (parameter counts of the big models).
        logging.getLogger().disabled, was = True, logging.getLogger().disabled
        try:
            with torch.device(device):  # built there directly (meta: no memory, no initialisation)
                oc = open_clip.create_model(
                    name,
                    pretrained=None,
                    load_weights=False,
                    pretrained_image=False,
                    pretrained_text=False,
                    device=device,
                )
        finally:
            logging.getLogger().disabled = was
        return CLIPModel(oc.visual, oc.text, PREPROCESS[name], name)

    return build


def _tiny(text_kind: str) -> Callable[..., CLIPModel]:
    def build(
        embed_dim: int = 64,
        image_widths: tuple[int, int, int, int] = (16, 32, 64, 128),
        image_depths: tuple[int, int, int, int] = (1, 1, 1, 1),
        image_size: int = 64,
        text_width: int = 64,
        text_layers: int = 1,
        text_heads: int = 2,
        vocab_size: int = 49408,
        context_length: int = 77,
        **_: Any,
    ) -> CLIPModel:
        visual = tiny_mci(embed_dim, image_widths, image_depths, image_size)
        if text_kind == "mct":
            text: nn.Module = MCt(
                MCtConfig(
                    dim=text_width,
                    n_transformer_layers=text_layers,
                    n_heads=text_heads,
                    projection_dim=embed_dim,
                    vocab_size=vocab_size,
                    context_length=context_length,
                )
            )
        else:
            text = TextTransformer(
                context_length=context_length,
                vocab_size=vocab_size,
                width=text_width,
                heads=text_heads,
                layers=text_layers,
                output_dim=embed_dim,
                no_causal_mask=True,
            )
        pre = Preprocess(image_size=image_size, context_length=context_length)
        return CLIPModel(visual, text, pre, f"tiny-{text_kind}")

    return build


_BUILDERS: dict[str, Callable[..., CLIPModel]] = {
    "MobileCLIP-S0": _s0,
    **{name: _open_clip(name) for name in _OPEN_CLIP_MODELS},
    "tiny-S0": _tiny("mct"),
    "tiny-S1": _tiny("base"),
}


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def create_model(name: str, **overrides: Any) -> CLIPModel:
    """Build a model by name; ``tiny-*`` models accept size overrides (see ``_tiny``), the
    open_clip-built ones ``device`` (``"meta"``: structure only, no memory)."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {list_models()}") from None
    return builder(**overrides)
