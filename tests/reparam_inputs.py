"""Model states that make reparameterisation tests meaningful: a freshly initialised batch norm is the
identity and layer scales are tiny, so a folding bug could leave the output unchanged. A helper module, not
a test module."""

from __future__ import annotations

import torch
from torch import nn


def perturb_for_reparam(model: nn.Module, seed: int = 1) -> None:
    """Random BN statistics/affines and O(0.1) layer scales, so every folded branch changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.5, 0.5, generator=g)
        for name, p in model.named_parameters():
            if "layer_scale" in name or name.endswith("gamma"):
                p.uniform_(0.05, 0.3, generator=g)
