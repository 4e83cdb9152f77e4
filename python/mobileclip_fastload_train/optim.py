"""AdamW with MobileCLIP's defaults and a linear-warmup + cosine schedule.

Published recipe (DataCompDR-12M): lr 1e-3, weight decay 0.2, betas (0.9, 0.95),
warmup 1000 steps then cosine to 0, gradient clipping at norm 1.0. Weight decay
is not applied to biases, normalisation parameters (any *Norm layer's affine),
per-channel layer scales, or the logit scale.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def _no_decay_names(model: nn.Module) -> set[str]:
    names = set()
    for module_name, module in model.named_modules():
        for param_name, p in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if (
                isinstance(module, _NORM_TYPES)
                or p.ndim < 2
                or param_name == "bias"
                or "layer_scale" in full
                or full.endswith("gamma")
                or "logit_scale" in full
            ):
                names.add(full)
    return names


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    no_decay = _no_decay_names(model)
    decay, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (rest if name in no_decay else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def build_optimizer(
    model: nn.Module,
    lr: float = 1e-3,
    weight_decay: float = 0.2,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-6,
) -> torch.optim.AdamW:
    # The fused kernel (CPU and CUDA) is several times faster than the per-tensor loop.
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas, eps=eps, fused=True)


def lr_at(step: int, base_lr: float, warmup: int, total: int) -> float:
    """Learning rate for optimiser step ``step`` (0-based): linear warmup, then cosine to 0."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(1.0, progress)))
