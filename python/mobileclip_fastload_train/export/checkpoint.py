"""Load a checkpoint of any layout this project meets into ``create_model(name)``, reparameterised.

Layouts, recognised by their keys:

* this project's training checkpoint (``mobileclip_fastload_train.checkpoint``): ``{"model": state_dict, ...}``;
* an open_clip state dict (Apple's MobileCLIP-S1/S2/B and ``mobileclip2_*.pt``, open_clip
  training's ``{"state_dict": ...}`` with DDP's ``module.`` prefix): ``visual.*``, ``text.*``,
  ``logit_scale``, which is ``CLIPModel``'s own layout;
* Apple's ``mobileclip_s0.pt`` layout (``image_encoder.*``, ``text_encoder.*``).

Released checkpoints are train-time (not folded), so folding always follows loading.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from mobileclip_fastload_train.checkpoint import load_checkpoint
from mobileclip_fastload_train.models import CLIPModel, create_model, reparameterize
from mobileclip_fastload_train.models.apple_checkpoint import load_apple_checkpoint


def _model_state(checkpoint: Mapping[str, object], path: Path) -> dict[str, torch.Tensor]:
    for key in ("model", "state_dict"):  # this project's / open_clip training's wrapper
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping):
            checkpoint = inner
            break
    state = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ValueError(
            f"{path}: no tensors found; expected a model state dict, "
            "a training checkpoint ({'model': ...}) or {'state_dict': ...}"
        )
    if all(k.startswith("module.") for k in state):  # saved from a DistributedDataParallel wrapper
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_for_export(path: str | os.PathLike[str], model_name: str, **overrides: object) -> CLIPModel:
    """``create_model(model_name, **overrides)`` with the weights of ``path``, folded, in eval mode.

    Raises ``ValueError`` naming the file and the keys that do not fit the model."""
    path = Path(path)
    model = create_model(model_name, **overrides)
    state = _model_state(load_checkpoint(path), path)
    try:
        if any(k.startswith("text_encoder.") for k in state):
            load_apple_checkpoint(model, state)
        else:
            model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError) as e:
        raise ValueError(f"{path}: does not fit {model_name}: {e}") from None
    return reparameterize(model, inplace=True)
