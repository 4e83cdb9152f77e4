"""Synthetic captions: a small captioner interface and open_clip's CoCa behind it.

A captioner has a ``tag`` (its caption set is ``syn_text`` for the first
captioner, ``syn_text_<tag>`` for the others, in the store and in DataCompDR output), a number of
captions per image, a ``fingerprint`` (what determines its output, for resuming),
``prepare(rgb)`` (run on the replay threads: e.g. resize + normalise) and
``caption(prepared, seeds, device)``: S strings per image. It must pickle
(worker processes, Ray): build heavy models lazily, in the worker. Another model
(e.g. a Hugging Face captioner) plugs in by subclassing ``Captioner``.

Determinism: captions are drawn from torch's RNG seeded from the samples' own
``caption_seed(seed, uid, tag)``. With ``images_per_call=1`` CoCa generates one
image (S rows) per call, so a sample's captions do not depend on any other sample;
larger values batch several images per ``generate`` call: still the same bytes for
the same inputs, options, device type, GPU model and versions, but a sample's
captions then depend on the samples batched with it. The default (``0``, "auto")
is the fast path where it matters: a whole chunk per call on CUDA (open_clip's
``generate`` has no KV cache and is launch-bound, ~1,000 kernels per token: one
image per call leaves the GPU idle), one image per call on the CPU. Generation
runs in fp32 unless ``precision="bf16"``: it is launch-bound, so bf16 buys little,
and bf16 logits would quantise the top-p cut.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec, build

DEFAULT_CAPTIONER = "coca_ViT-L-14"
DEFAULT_CAPTIONER_PRETRAINED = "mscoco_finetuned_laion2B-s13B-b90k"
DEFAULT_NUM_CAPTIONS = 5


def caption_seed(seed: int, uid: str, tag: str) -> int:
    digest = hashlib.blake2b(f"{int(seed)}\x00{uid}\x00caption\x00{tag}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class Captioner(ABC):
    tag: str
    num_captions: int

    @abstractmethod
    def fingerprint(self) -> dict:
        """Everything that determines the captions (model, weights, sampling settings)."""

    def prepare(self, rgb: np.ndarray):
        """Per image, on the replay threads (beside the GPU work): what ``caption`` takes. Default: the pixels."""
        return rgb

    def resolved_precision(self, device: str) -> str:
        """The numeric precision it generates in on ``device`` (part of the captioning fingerprint)."""
        return "fp32"

    @abstractmethod
    def caption(self, images: Sequence, seeds: Sequence[int], device: str) -> list[list[str]]:
        """``num_captions`` strings for each image, as ``prepare`` made it from Pillow's RGB uint8 [H, W, 3]."""


@dataclass(frozen=True)
class OpenClipCaptioner(Captioner):
    """open_clip CoCa with nucleus sampling (``generate(..., generation_type="top_p")``)
    at a fixed output length, as Apple's reinforcement ran it."""

    model: OpenClipSpec = field(default_factory=lambda: OpenClipSpec(DEFAULT_CAPTIONER, DEFAULT_CAPTIONER_PRETRAINED))
    tag: str = "coca"
    num_captions: int = DEFAULT_NUM_CAPTIONS
    top_p: float = 0.9
    seq_len: int = 30
    images_per_call: int = 0  # 0: a whole chunk per call on CUDA, one image per call on the CPU
    precision: str = "auto"  # fp32 ("bf16": autocast on CUDA)

    def __post_init__(self):
        if self.images_per_call < 0:
            raise ValueError(f"images_per_call must be >= 0 (0: auto), got {self.images_per_call}")

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

    def resolved_precision(self, device: str) -> str:
        from mobileclip_fastload.reinforce.teachers import PRECISIONS

        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        return "bf16" if self.precision == "bf16" else "fp32"

    def images_per_call_on(self, device: str, chunk: int) -> int:
        if self.images_per_call:
            return self.images_per_call
        return max(1, chunk) if device.startswith("cuda") else 1

    def prepare(self, rgb: np.ndarray):
        """CoCa's own eval preprocessing (resize, crop, normalise) -> float32 [3, H, W]."""
        from PIL import Image

        return eval_transform(self.model)(Image.fromarray(rgb))

    def caption(self, images: Sequence, seeds: Sequence[int], device: str) -> list[list[str]]:
        import torch

        model, _ = build(self.model, device)
        bf16 = self.resolved_precision(device) == "bf16"
        devices = [torch.device(device)] if device.startswith("cuda") else []
        out: list[list[str]] = []
        step = self.images_per_call_on(device, len(images))
        for start in range(0, len(images), step):
            group = [x if isinstance(x, torch.Tensor) else self.prepare(x) for x in images[start : start + step]]
            x = torch.stack(group).to(device).repeat_interleave(self.num_captions, dim=0)  # S rows per image
            group_seeds = list(seeds[start : start + step])
            seed = group_seeds[0] if len(group_seeds) == 1 else caption_group_seed(group_seeds)
            with (
                torch.random.fork_rng(devices=devices),
                torch.inference_mode(),
                torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16),
                encode_each_image_once(model, self.num_captions),
            ):
                torch.manual_seed(seed)
                tokens = model.generate(
                    x, generation_type="top_p", top_p=self.top_p, seq_len=self.seq_len, fixed_output_length=True
                )
            texts = [decode_caption(t) for t in tokens.tolist()]
            out += [texts[i : i + self.num_captions] for i in range(0, len(texts), self.num_captions)]
        return out


@contextmanager
def encode_each_image_once(model, copies: int):
    """While it holds, CoCa's image tower runs once per image: ``generate`` encodes the whole batch it is given,
    and ours holds each image ``copies`` times in a row (S captions of it), so the tower would run S times on
    identical rows. The latents of every ``copies``-th row are computed and repeated instead (S x fewer image
    tower rows; the rows are the same images, so the outputs are those of the plain call)."""
    encode = model._encode_image

    def once(images, normalize: bool = True):
        latent, tokens = encode(images[::copies], normalize=normalize)
        return latent.repeat_interleave(copies, dim=0), tokens.repeat_interleave(copies, dim=0)

    model._encode_image = once  # an instance attribute, shadowing the method until removed
    try:
        yield
    finally:
        del model._encode_image


@lru_cache(maxsize=8)
def eval_transform(spec: OpenClipSpec):
    """The model's eval image transform, from its configs (no model is built: the replay threads use it)."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    from mobileclip_fastload.reinforce.open_clip_models import preprocess_cfg_of

    return image_transform_v2(PreprocessCfg(**preprocess_cfg_of(spec)), is_train=False)


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
