"""MCi image encoders (FastViT variants from timm) as CLIP image towers.

The timm classifier head (global average pool + linear) *is* the CLIP
projection to the embedding dim, exactly as open_clip's ``TimmModel`` builds
MobileCLIP towers with ``proj=None``; the trunk sits at ``.trunk`` so the state
dict reads ``visual.trunk.*`` like open_clip's MobileCLIP checkpoints.
"""

from __future__ import annotations

from functools import partial

import timm
import torch
from timm.models.fastvit import FastVit, RepConditionalPosEnc
from torch import nn


class ImageTower(nn.Module):
    def __init__(self, trunk: nn.Module, image_size: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.image_size = image_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(images)


def mci(variant: str, embed_dim: int = 512, image_size: int = 256) -> ImageTower:
    """``variant`` is a timm name such as ``fastvit_mci0``; built randomly initialised, nothing downloaded."""
    trunk = timm.create_model(variant, pretrained=False, num_classes=embed_dim, global_pool="avg")
    return ImageTower(trunk, image_size)


def tiny_mci(
    embed_dim: int = 64,
    widths: tuple[int, int, int, int] = (16, 32, 64, 128),
    depths: tuple[int, int, int, int] = (1, 1, 1, 1),
    image_size: int = 64,
) -> ImageTower:
    """A scaled-down MCi (same block types: RepMixer stages, attention last, SE downsamples)
    for fast tests and CPU experiments."""
    trunk = FastVit(
        layers=depths,
        embed_dims=widths,
        mlp_ratios=(3, 3, 3, 3),
        se_downsamples=(False, False, True, True),
        pos_embs=(None, None, None, partial(RepConditionalPosEnc, spatial_shape=(7, 7))),
        token_mixers=("repmixer", "repmixer", "repmixer", "attention"),
        lkc_use_act=True,
        num_classes=embed_dim,
        global_pool="avg",
    )
    return ImageTower(trunk, image_size)
