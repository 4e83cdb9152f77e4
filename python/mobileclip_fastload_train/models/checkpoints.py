"""Load released weights into a ``create_model`` model, for fine-tuning and evaluation.

Three layouts, told apart by their keys (``checkpoint_layout``):

- ``open_clip``: Apple's MobileCLIP2 ``mobileclip2_<v>.pt`` and open_clip's own
  checkpoints: ``visual.trunk.*``, ``text.*``, ``logit_scale``, optionally inside
  ``{"state_dict": ...}`` with DDP's ``module.`` prefix (an open_clip training
  checkpoint). Train-time (not reparameterised) form: our towers are open_clip's.
- ``timm``: timm's re-hosted image towers (``fastvit_mci*.apple_mclip2_dfndr2b``,
  ``vit_*_224.apple_mclip2_dfndr2b``): the timm model's own keys, whose classifier
  head is the CLIP projection. Only the image tower is loaded.
- ``apple_v1``: Apple's v1 ``mobileclip_s0.pt`` (``image_encoder.*``/``text_encoder.*``),
  see ``mobileclip_fastload_train.models.apple_checkpoint``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from mobileclip_fastload_train.models.apple_checkpoint import load_apple_checkpoint
from mobileclip_fastload_train.models.clip import CLIPModel

LAYOUTS = ("open_clip", "timm", "apple_v1")


def _unwrap(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict of a bare state dict or an open_clip training checkpoint, without ``module.``."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise ValueError("the checkpoint holds no state dict ('state_dict' is not a mapping)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def checkpoint_layout(state_dict: Mapping[str, Any]) -> str:
    """``open_clip``, ``timm`` or ``apple_v1`` (see the module docstring); ``ValueError`` otherwise."""
    keys = list(state_dict)
    if any(k.startswith("visual.") for k in keys) and any(k.startswith("text.") for k in keys):
        return "open_clip"
    if any(k.startswith("text_encoder.") for k in keys):
        return "apple_v1"
    if any(k.startswith(("stem.", "patch_embed.", "stages.", "blocks.")) for k in keys):
        return "timm"
    raise ValueError(f"unknown checkpoint layout (first keys: {keys[:5]}); expected one of {LAYOUTS}")


def _check_train_time_form(state_dict: Mapping[str, Any], what: str) -> None:
    folded = [k for k in state_dict if "reparam_conv" in k]
    if folded:
        raise ValueError(
            f"{what} is reparameterised (inference form, e.g. {folded[0]!r}); fine-tuning and this model need "
            "the train-time form (Apple's mobileclip2_*.pt and timm's re-hosts are in it). Reparameterise after "
            "loading instead: mobileclip_fastload_train.models.reparameterize(model)"
        )


def _load_strict(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], what: str) -> None:
    try:
        result = module.load_state_dict(state_dict, strict=False)
    except RuntimeError as e:  # shapes that differ (another model's checkpoint)
        raise ValueError(f"{what} does not fit the model: {e}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{what} does not fit the model: {len(result.missing_keys)} missing keys "
            f"{result.missing_keys[:5]}, {len(result.unexpected_keys)} unexpected keys {result.unexpected_keys[:5]}"
        )


def load_open_clip_checkpoint(model: CLIPModel, checkpoint: Mapping[str, Any], what: str = "checkpoint") -> None:
    """Load an open_clip state dict (Apple's MobileCLIP2 ``.pt``) in place; every key must fit.

    ``logit_bias`` (SigLIP models only) is refused as an unexpected key."""
    state = _unwrap(checkpoint)
    _check_train_time_form(state, what)
    _load_strict(model, state, what)


def load_timm_image_tower(model: CLIPModel, checkpoint: Mapping[str, Any], what: str = "checkpoint") -> None:
    """Load a timm image-tower state dict (head = CLIP projection) into ``model.visual.trunk`` in place."""
    state = _unwrap(checkpoint)
    _check_train_time_form(state, what)
    _load_strict(model.visual.trunk, state, what)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A checkpoint file's state dict: ``.safetensors`` (timm's hub files) or a torch pickle."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path, device="cpu")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path}: not a state dict (a {type(checkpoint).__name__})")
    return _unwrap(checkpoint)


def load_pretrained(model: CLIPModel, path: str | os.PathLike[str]) -> str:
    """Load the weights in ``path`` (any layout of ``LAYOUTS``) into ``model``; returns the layout."""
    state = read_checkpoint(path)
    what = os.fspath(path)
    try:
        layout = checkpoint_layout(state)
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None
    if layout == "open_clip":
        load_open_clip_checkpoint(model, state, what)
    elif layout == "timm":
        load_timm_image_tower(model, state, what)
    else:
        load_apple_checkpoint(model, state)
    return layout
