"""Build a small DR store directly (no conversion step) from real photographs,
with augmentation parameters that exercise every replay path: RandomResizedCrop
boxes and RandAugment ops drawn as torchvision draws them, boxes past the image
border, flips and null entries."""

from __future__ import annotations

import io
import os
from functools import lru_cache

import numpy as np
from PIL import Image

from mobileclip_fastload._core import DEFAULT_WRITE_SCHEMA
from mobileclip_fastload.store import AUG_FLAG_HFLIP, AUG_FLAG_NULL, Sample, StoreWriter, aug_records
from mobileclip_fastload.testing.datacompdr import draw_param_aug_entries, normalised_embeddings

SOT, EOT = 49406, 49407


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from skimage import data

    rgb = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field()]
    return tuple(np.ascontiguousarray(p[..., :3]) for p in rgb)


def photo_jpeg(
    rng: np.random.Generator, *, min_side: int = 48, max_side: int = 320, grayscale: bool = False
) -> tuple[bytes, int, int]:
    """A JPEG of a random window of a real photograph, randomly resized; returns (bytes, width, height)."""
    photos = _photos()
    p = photos[int(rng.integers(len(photos)))]
    h, w = p.shape[:2]
    ch, cw = int(rng.integers(h // 3, h + 1)), int(rng.integers(w // 3, w + 1))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    img = Image.fromarray(p[y : y + ch, x : x + cw])
    tw, th = int(rng.integers(min_side, max_side + 1)), int(rng.integers(min_side, max_side + 1))
    img = img.resize((tw, th), Image.BILINEAR)
    if grayscale:
        img = img.convert("L")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(70, 96)), subsampling=int(rng.integers(0, 3)))
    return buf.getvalue(), tw, th


def random_aug_records(rng: np.random.Generator, J: int, width: int, height: int) -> np.ndarray:
    """J augmentation records: entries drawn exactly as torchvision draws them
    (RandomResizedCrop + RandAugment), then varied to cover every replay path:
    boxes past the border (as after a re-download at another size), fewer ops,
    horizontal flips and null entries."""
    entries = draw_param_aug_entries(width, height, J, seed=int(rng.integers(2**31)))
    for e in entries:
        kind = rng.random()
        if kind < 0.1:
            continue
        box, ops = e
        if kind < 0.3:
            box[0] += int(rng.integers(-box[2] // 2, box[2] // 2 + 1))
            box[1] += int(rng.integers(-box[3] // 2, box[3] // 2 + 1))
        e[1] = ops[: int(rng.integers(0, 3))]
    entries = [None if rng.random() < 0.1 else e for e in entries]
    recs, _ = aug_records(entries, width=width, height=height)
    flip = (rng.random(J) < 0.2) & (recs["flags"] & AUG_FLAG_NULL == 0)
    recs["flags"][flip] |= AUG_FLAG_HFLIP
    return recs


def random_tokens(rng: np.random.Generator, max_len: int = 77) -> np.ndarray:
    n = int(rng.integers(0, max_len - 1))
    return np.concatenate([[SOT], rng.integers(1, 49406, size=n), [EOT]]).astype(np.uint16)


def make_store(
    path: str | os.PathLike[str],
    n: int = 24,
    *,
    J: int = 4,
    S: int = 3,
    K: int = 2,
    D: int = 8,
    seed: int = 0,
    embedding_dtype: str = "float16",
    corrupt: tuple[int, ...] = (),
    grayscale_every: int = 5,
    target_shard_bytes: int = 1 << 20,
    schema_version: int = DEFAULT_WRITE_SCHEMA,
    caption_sets: list[tuple[str, int]] | None = None,
) -> str:
    """Write a store of `n` real-photo samples; samples listed in `corrupt` get undecodable image bytes;
    `schema_version=1` writes every shard entry into manifest.json (for tests that edit them);
    `caption_sets` as `StoreWriter` takes them (their sizes sum to S)."""
    rng = np.random.default_rng(seed)
    with StoreWriter(
        path,
        J=J,
        S=S,
        K=K,
        D=D,
        embedding_dtype=embedding_dtype,
        target_shard_bytes=target_shard_bytes,
        schema_version=schema_version,
        caption_sets=caption_sets,
    ) as w:
        for i in range(n):
            jpeg, width, height = photo_jpeg(
                rng, grayscale=grayscale_every > 0 and i % grayscale_every == grayscale_every - 1
            )
            if i in corrupt:
                jpeg = jpeg[:2] + bytes(rng.integers(0, 256, size=64, dtype=np.uint8))
            w.add(
                Sample(
                    uid=f"sample-{i:05d}",
                    image=jpeg,
                    width=width,
                    height=height,
                    orig_width=width,
                    orig_height=height,
                    caption=f"a photograph number {i}",
                    caption_tokens=random_tokens(rng),
                    syn_captions=[f"synthetic caption {s} of photo {i}" for s in range(S)],
                    syn_tokens=[random_tokens(rng) for _ in range(S)],
                    aug=random_aug_records(rng, J, width, height),
                    image_emb=normalised_embeddings(rng, J, K, D),
                    text_emb=normalised_embeddings(rng, 1 + S, K, D),
                    sha256=None,
                    flags=0,
                )
            )
    return os.fspath(path)
