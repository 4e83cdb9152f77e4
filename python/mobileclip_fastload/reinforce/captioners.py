"""Synthetic captions: a small captioner interface and open_clip's CoCa behind it.

A captioner has a ``tag`` (its caption set is ``syn_text`` for the first
captioner, ``syn_text_<tag>`` in DataCompDR output for the others), a number of
captions per image, a ``fingerprint`` (what determines its output, for resuming)
and ``caption(images, seeds, device)``: S strings per image. It must pickle
(worker processes, Ray): build heavy models lazily, in the worker. Another model
(e.g. a Hugging Face captioner) plugs in by subclassing ``Captioner``.

Determinism: captions are drawn from torch's RNG seeded from the samples' own
``caption_seed(seed, uid, tag)``. With ``images_per_call=1`` (the default) CoCa
generates one image (S rows) per call, so a sample's captions do not depend on
any other sample; larger values batch several images per ``generate`` call (much
faster on a GPU): still the same bytes for the same inputs and options, but a
sample's captions then depend on the samples batched with it.
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
    images_per_call: int = 1
    precision: str = "auto"  # bf16 autocast on CUDA, fp32 on CPU

    def fingerprint(self) -> dict:
        return {
            "kind": "open_clip_coca",
            "model": self.model.fingerprint(),
            "tag": self.tag,
            "num_captions": self.num_captions,
            "top_p": self.top_p,
            "seq_len": self.seq_len,
            "images_per_call": self.images_per_call,
            "precision": self.precision,
        }

    def caption(self, images: Sequence[np.ndarray], seeds: Sequence[int], device: str) -> list[list[str]]:
        import torch
        from open_clip.transform import PreprocessCfg, image_transform_v2
        from PIL import Image

        from mobileclip_fastload.reinforce.teachers import resolve_precision

        model, _ = build(self.model, device)
        preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
        bf16 = resolve_precision(self.precision, device) == "bf16"
        devices = [torch.device(device)] if device.startswith("cuda") else []
        out: list[list[str]] = []
        step = max(1, self.images_per_call)
        for start in range(0, len(images), step):
            group = [preprocess(Image.fromarray(rgb)) for rgb in images[start : start + step]]
            x = torch.stack(group).to(device).repeat_interleave(self.num_captions, dim=0)  # S rows per image
            group_seeds = list(seeds[start : start + step])
            seed = group_seeds[0] if len(group_seeds) == 1 else caption_group_seed(group_seeds)
            with torch.random.fork_rng(devices=devices), torch.inference_mode(), \
                    torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
                torch.manual_seed(seed)
                tokens = model.generate(
                    x, generation_type="top_p", top_p=self.top_p, seq_len=self.seq_len, fixed_output_length=True
                )
            texts = [decode_caption(t) for t in tokens.tolist()]
            out += [texts[i : i + self.num_captions] for i in range(0, len(texts), self.num_captions)]
        return out


def caption_group_seed(seeds: Sequence[int]) -> int:
    """One torch seed for a ``generate`` call over several images, from their own seeds."""
    digest = hashlib.blake2b(b"".join(int(s).to_bytes(8, "little") for s in seeds), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


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
