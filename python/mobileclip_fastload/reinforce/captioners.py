"""Synthetic captions: a small captioner interface and open_clip's CoCa behind it.

A captioner has a ``tag`` (its caption set is ``syn_text`` for the first
captioner, ``syn_text_<tag>`` in DataCompDR output for the others), a number of
captions per image, a ``fingerprint`` (what determines its output, for resuming)
and ``caption(images, seeds, device)``: S strings per image. It must pickle
(worker processes, Ray): build heavy models lazily, in the worker. Another model
(e.g. a Hugging Face captioner) plugs in by subclassing ``Captioner``.

Determinism: each image's captions are drawn from a torch RNG seeded with
``caption_seed(seed, uid)`` alone, so a sample's captions do not depend on the
other samples of its batch (CoCa therefore generates one image, S rows, at a time).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec, build

DEFAULT_CAPTIONER = "coca_ViT-L-14"
DEFAULT_CAPTIONER_PRETRAINED = "mscoco_finetuned_laion2B-s13B-b90k"
DEFAULT_NUM_CAPTIONS = 5


def caption_seed(seed: int, uid: str, tag: str) -> int:
    digest = hashlib.blake2b(f"{int(seed)}\x00{uid}\x00caption\x00{tag}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class Captioner(ABC):
    tag: str
    num_captions: int

    @abstractmethod
    def fingerprint(self) -> dict:
        """Everything that determines the captions (model, weights, sampling settings)."""

    @abstractmethod
    def caption(self, images: Sequence[np.ndarray], seeds: Sequence[int], device: str) -> list[list[str]]:
        """``num_captions`` strings for each RGB uint8 [H, W, 3] image (Pillow's decode)."""


@dataclass(frozen=True)
class OpenClipCaptioner(Captioner):
    """open_clip CoCa with nucleus sampling (``generate(..., generation_type="top_p")``)
    at a fixed output length, as Apple's reinforcement ran it."""

    model: OpenClipSpec = field(default_factory=lambda: OpenClipSpec(DEFAULT_CAPTIONER, DEFAULT_CAPTIONER_PRETRAINED))
    tag: str = "coca"
    num_captions: int = DEFAULT_NUM_CAPTIONS
    top_p: float = 0.9
    seq_len: int = 30

    def fingerprint(self) -> dict:
        return {
            "kind": "open_clip_coca",
            "model": self.model.fingerprint(),
            "tag": self.tag,
            "num_captions": self.num_captions,
            "top_p": self.top_p,
            "seq_len": self.seq_len,
        }

    def caption(self, images: Sequence[np.ndarray], seeds: Sequence[int], device: str) -> list[list[str]]:
        import open_clip
        import torch
        from PIL import Image

        model, _ = build(self.model, device)
        preprocess = open_clip.image_transform(model.visual.preprocess_cfg["size"], is_train=False,
                                               mean=model.visual.preprocess_cfg["mean"],
                                               std=model.visual.preprocess_cfg["std"],
                                               interpolation=model.visual.preprocess_cfg["interpolation"],
                                               resize_mode=model.visual.preprocess_cfg.get("resize_mode", "shortest"))
        out = []
        devices = [torch.device(device)] if device.startswith("cuda") else []
        for rgb, seed in zip(images, seeds):
            x = preprocess(Image.fromarray(rgb)).unsqueeze(0).to(device)
            x = x.expand(self.num_captions, -1, -1, -1)
            with torch.random.fork_rng(devices=devices), torch.inference_mode():
                torch.manual_seed(seed)
                tokens = model.generate(
                    x, generation_type="top_p", top_p=self.top_p, seq_len=self.seq_len, fixed_output_length=True
                )
            out.append([decode_caption(t) for t in tokens.tolist()])
        return out


def decode_caption(tokens: Sequence[int]) -> str:
    """CoCa output ids -> text: drop the start token, stop at the end token or padding (id 0)."""
    from open_clip.tokenizer import _tokenizer

    sot, eot = _tokenizer.encoder["<start_of_text>"], _tokenizer.encoder["<end_of_text>"]
    ids = []
    for t in tokens:
        if t == sot:
            continue
        if t in (eot, 0):
            break
        ids.append(t)
    return _tokenizer.decode(ids).strip()
