"""Load Apple's published MobileCLIP-S0 checkpoint layout into ``create_model("MobileCLIP-S0")``.

Apple's ``mobileclip_s0.pt`` holds ``image_encoder.model.*`` (MCi in Apple's
own naming), ``text_encoder.*`` (MCt) and ``logit_scale``. The image keys are
remapped by timm's FastViT ``checkpoint_filter_fn`` (which knows Apple's
naming); the text keys load into :class:`mobileclip_fastload_train.models.mct.MCt` after the
prefix is stripped, because MCt mirrors Apple's module layout.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from timm.models.fastvit import checkpoint_filter_fn

from mobileclip_fastload_train.models.clip import CLIPModel


def load_apple_checkpoint(model: CLIPModel, state_dict: Mapping[str, torch.Tensor], image: bool = True) -> None:
    """Load in place; raises ``KeyError``/``RuntimeError`` naming the keys that do not fit.

    ``image=False`` loads only the text tower and logit scale. The image remap is
    timm's and is not exercised offline here (no Apple checkpoint is available)."""
    state_dict = dict(state_dict.get("state_dict", state_dict))
    text = {k[len("text_encoder.") :]: v for k, v in state_dict.items() if k.startswith("text_encoder.")}
    if not text:
        raise KeyError("no 'text_encoder.*' keys: not an Apple MobileCLIP checkpoint")
    if "logit_scale" not in state_dict:
        raise KeyError("no 'logit_scale' in the checkpoint")
    if image:
        image_sd = {k: v for k, v in state_dict.items() if k.startswith("image_encoder.")}
        if not image_sd:
            raise KeyError("no 'image_encoder.*' keys: not an Apple MobileCLIP checkpoint")
        model.visual.trunk.load_state_dict(checkpoint_filter_fn(image_sd, model.visual.trunk), strict=True)
    model.text.load_state_dict(text, strict=True)
    with torch.no_grad():
        model.logit_scale.copy_(state_dict["logit_scale"].reshape(()))
