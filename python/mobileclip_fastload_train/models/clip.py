"""A two-tower CLIP model: ``visual`` (images -> embed_dim) and ``text`` (tokens -> embed_dim).

Attribute names (``visual``, ``text``, ``logit_scale``) match open_clip's
``CustomTextCLIP``, so open_clip MobileCLIP-S1/S2/B and MobileCLIP2 checkpoints load into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Preprocess:
    """What the data side must produce for this model in training.

    ``interpolation`` is the training replay's resampling: bicubic at the student's own
    size, as Apple's pipeline replays (open_clip's training RandomResizedCrop hard-codes
    BICUBIC; the "bilinear" of open_clip's MobileCLIP config is its evaluation transform).
    It equals ``mobileclip_fastload.loader.TRAINING_INTERPOLATION`` (tested); spelled out
    here so that the models import without the compiled extension."""

    image_size: int
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    interpolation: str = "bicubic"
    context_length: int = 77


class CLIPModel(nn.Module):
    def __init__(
        self,
        visual: nn.Module,
        text: nn.Module,
        preprocess: Preprocess,
        name: str = "",
        init_logit_scale: float = math.log(1 / 0.07),
    ) -> None:
        super().__init__()
        self.visual = visual
        self.text = text
        self.logit_scale = nn.Parameter(torch.tensor(float(init_logit_scale)))
        self.preprocess = preprocess
        self.name = name

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        features = self.visual(images)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        features = self.text(tokens)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor | None, tokens: torch.Tensor | None):
        """L2-normalised image and text features and ``exp(logit_scale)``.

        Either input may be ``None`` (then its features are ``None``)."""
        image_features = self.encode_image(images) if images is not None else None
        text_features = self.encode_text(tokens) if tokens is not None else None
        return image_features, text_features, self.logit_scale.exp()

    @torch.no_grad()
    def clamp_logit_scale(self, max_scale: float = 100.0) -> None:
        """Keep ``exp(logit_scale)`` in ``[1, max_scale]`` (called after each optimiser step, as open_clip)."""
        self.logit_scale.clamp_(0.0, math.log(max_scale))
