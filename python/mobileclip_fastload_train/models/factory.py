"""Build MobileCLIP models by name, randomly initialised (nothing is downloaded).

=====================  ==========================  ===============================  =====
name                   image tower                 text tower                       input
=====================  ==========================  ===============================  =====
MobileCLIP-S0          MCi0 (timm fastvit_mci0)    MCt (mobileclip_fastload_train.models.mct)        256
MobileCLIP-S1          MCi1 (timm, via open_clip)  base 12-layer (open_clip)        256
MobileCLIP-S2          MCi2 (timm, via open_clip)  base 12-layer (open_clip)        256
MobileCLIP-B           ViT-B/16 MCi (timm)         base 12-layer, causal (open_clip) 224
tiny-S0 / tiny-S1      scaled-down MCi             scaled-down MCt / base           64
=====================  ==========================  ===============================  =====

The ``tiny-*`` models keep every block type of their full-size counterpart
(RepMixer stages, attention stage, SE, Text-RepMixer, ...) at a size that
trains on a CPU in minutes; they are for tests and small experiments.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import open_clip
from open_clip.transformer import TextTransformer
from torch import nn

from mobileclip_fastload_train.models.clip import CLIPModel, Preprocess
from mobileclip_fastload_train.models.image_tower import mci, tiny_mci
from mobileclip_fastload_train.models.mct import MCt, MCtConfig

#: Training preprocessing of each full-size model (what the loader must replay for it).
PREPROCESS = {
    "MobileCLIP-S0": Preprocess(image_size=256),
    "MobileCLIP-S1": Preprocess(image_size=256),
    "MobileCLIP-S2": Preprocess(image_size=256),
    "MobileCLIP-B": Preprocess(image_size=224),
}
_OPEN_CLIP_MODELS = ("MobileCLIP-S1", "MobileCLIP-S2", "MobileCLIP-B")


def _s0(**_: Any) -> CLIPModel:
    pre = PREPROCESS["MobileCLIP-S0"]
    return CLIPModel(mci("fastvit_mci0", 512, pre.image_size), MCt(MCtConfig()), pre, "MobileCLIP-S0")


def _open_clip(name: str) -> Callable[..., CLIPModel]:
    def build(**_: Any) -> CLIPModel:
        # open_clip warns that no pretrained weights were loaded: that is the intent here.
        logging.getLogger().disabled, was = True, logging.getLogger().disabled
        try:
            oc = open_clip.create_model(
                name, pretrained=None, load_weights=False, pretrained_image=False, pretrained_text=False
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
                MCtConfig(dim=text_width, n_transformer_layers=text_layers, n_heads=text_heads,
                          projection_dim=embed_dim, vocab_size=vocab_size, context_length=context_length)
            )
        else:
            text = TextTransformer(
                context_length=context_length, vocab_size=vocab_size, width=text_width, heads=text_heads,
                layers=text_layers, output_dim=embed_dim, no_causal_mask=True,
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
    """Build a model by name; ``tiny-*`` models accept size overrides (see ``_tiny``)."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {list_models()}") from None
    return builder(**overrides)
