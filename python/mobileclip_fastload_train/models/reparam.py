"""Inference-time reparameterisation of a MobileCLIP model.

Every train-time multi-branch block (MobileOne / RepMixer / RepCPE /
large-kernel branches in MCi via timm; Text-RepMixer and ConvFFN conv+BN in
MCt) is folded into a single conv. Outputs are unchanged in eval mode up to
float rounding; the folded model is faster and is what would be deployed.
"""

from __future__ import annotations

import copy

from timm.models import reparameterize_model
from torch import nn


def reparameterize(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return ``model`` (a copy unless ``inplace``) with all reparameterisable branches folded, in eval mode."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    towers = [getattr(model, "visual", None), getattr(model, "text", None)]
    if all(t is None for t in towers):
        towers = [model]
    for tower in towers:
        if tower is None:
            continue
        if hasattr(tower, "reparameterize"):
            tower.reparameterize()  # MCt: folds its Text-RepMixer blocks
        else:
            # timm's walker; not idempotent for FastViT blocks, so each tower is walked once.
            reparameterize_model(tower, inplace=True)
    return model
