"""The teacher ensemble: K open_clip CLIP models, each embedding the augmented
images at its own size / interpolation / normalisation and the captions with its
own tokenizer; every teacher's embedding L2-normalised on its own.

Pixels arrive as uint8 [N, size, size, 3] from the Rust replay (bit-identical to
Pillow + torchvision); ``to_model_input`` is torchvision's ``ToTensor`` +
``Normalize`` (x / 255, then (x - mean) / std, in float32). On CUDA the towers
run in bf16 (open_clip's own mixed precision: weights cast once, LayerNorms in
fp32) in inference mode; on CPU in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec, build, model_config, preprocess_cfg

PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class ImageView:
    """How a teacher wants its images: the replay size and interpolation, and its normalisation."""

    size: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def replay_key(self) -> tuple[int, str]:
        return self.size, self.interpolation


def embed_dim(spec: OpenClipSpec) -> int:
    """D of a teacher, read from its open_clip config (no model is built)."""
    return int(model_config(spec)["embed_dim"])


def resolve_precision(precision: str, device: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if device.startswith("cuda") else "fp32"
    return precision


class Teacher:
    def __init__(self, spec: OpenClipSpec, device: str, precision: str = "auto"):
        self.spec = spec
        self.device = device
        self.precision = resolve_precision(precision, device)
        self.model, self.tokenizer = build(spec, device, self.precision)
        import torch

        self.dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32  # the images' dtype
        self._constants = None  # mean, std on the device: uploaded once
        cfg = preprocess_cfg(self.model)
        if cfg["interpolation"] not in ("bicubic", "bilinear"):
            raise ValueError(
                f"teacher {spec.name}: the replay supports bicubic and bilinear, not {cfg['interpolation']!r}"
            )
        self.view = ImageView(cfg["size"], cfg["interpolation"], cfg["mean"], cfg["std"])

    def to_model_input(self, pixels: np.ndarray | Any):
        """uint8 [N, H, W, 3] (numpy, or a pinned CPU tensor: its upload overlaps) -> normalised float32
        [N, 3, H, W] on the device (ToTensor + Normalize, in float32)."""
        import torch

        if self._constants is None:
            self._constants = tuple(
                torch.tensor(v, device=self.device).view(1, 3, 1, 1) for v in (self.view.mean, self.view.std)
            )
        mean, std = self._constants
        x = torch.as_tensor(pixels).to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        return x.sub_(mean).div_(std)

    def embed_images(self, pixels: np.ndarray, model_input=None) -> np.ndarray:
        """float32 [N, D], each row L2-normalised. ``model_input``: ``to_model_input(pixels)`` when
        already made (teachers that share an ``ImageView`` share it: one upload, one normalisation)."""
        import torch

        x = self.to_model_input(pixels) if model_input is None else model_input
        with torch.inference_mode():
            feats = self.model.encode_image(x.to(self.dtype))
        return _normalised(feats)

    def tokenize(self, texts: Sequence[str]):
        """The teacher's own tokenizer (pure Python BPE: worth running beside the GPU work)."""
        return self.tokenizer(list(texts))

    def embed_texts(self, texts: Sequence[str], tokens=None) -> np.ndarray:
        """float32 [N, D], each row L2-normalised; ``tokens``: ``tokenize(texts)`` if already done."""
        import torch

        tokens = (self.tokenize(texts) if tokens is None else tokens).to(self.device)
        with torch.inference_mode():
            feats = self.model.encode_text(tokens)
        return _normalised(feats)


def _normalised(feats) -> np.ndarray:
    x = feats.float()
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return x.cpu().numpy()
