"""Build a small DR store directly (no conversion step) from real photographs,
with augmentation parameters that exercise every replay path: RandomResizedCrop
boxes, boxes past the image border, every RandAugment op, flips and null
entries."""

from __future__ import annotations

import io
import math
import os
from functools import lru_cache

import numpy as np
from PIL import Image

from mobileclip_fastload.store import AUG_DTYPE, Sample, StoreWriter

SOT, EOT = 49406, 49407

# (magnitude at bin 9 of 31, whether the sign is drawn) per RandAugment op, as
# torchvision's RandAugment draws them for the teachers' 224 px images.
_RANDAUG_MAGNITUDE = {
    0: (0.0, False),
    1: (0.3 * 9 / 30, True),
    2: (0.3 * 9 / 30, True),
    3: (150.0 / 331.0 * 224 * 9 / 30, True),
    4: (150.0 / 331.0 * 224 * 9 / 30, True),
    5: (30.0 * 9 / 30, True),
    6: (0.9 * 9 / 30, True),
    7: (0.9 * 9 / 30, True),
    8: (0.9 * 9 / 30, True),
    9: (0.9 * 9 / 30, True),
    10: (float(8 - round(9 / 7.5)), False),
    11: (255.0 - 255.0 * 9 / 30, False),
    12: (0.0, False),
    13: (0.0, False),
}


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from skimage import data

    rgb = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field()]
    return tuple(np.ascontiguousarray(p[..., :3]) for p in rgb)


def photo_jpeg(rng: np.random.Generator, *, min_side: int = 48, max_side: int = 320, grayscale: bool = False) -> tuple[bytes, int, int]:
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


def rrc_box(rng: np.random.Generator, width: int, height: int) -> tuple[int, int, int, int]:
    """A (top, left, height, width) box drawn like torchvision's RandomResizedCrop.get_params."""
    area = width * height
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        ratio = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return 0, 0, height, width


def random_aug_records(rng: np.random.Generator, J: int, width: int, height: int) -> np.ndarray:
    """J augmentation records covering RRC boxes, out-of-image boxes, all ops, flips and nulls."""
    recs = np.zeros(J, dtype=AUG_DTYPE)
    for j in range(J):
        kind = rng.random()
        if kind < 0.1:
            top, left, h, w = 0, 0, height, width
            recs[j]["flags"] = 1
        else:
            top, left, h, w = rrc_box(rng, width, height)
            if kind < 0.3:  # boxes past the border, as after a re-download at another size
                top += int(rng.integers(-h // 2, h // 2 + 1))
                left += int(rng.integers(-w // 2, w // 2 + 1))
            n_ops = int(rng.integers(0, 3))
            recs[j]["n_ops"] = n_ops
            for slot in range(n_ops):
                op = int(rng.integers(0, 14))
                mag, signed = _RANDAUG_MAGNITUDE[op]
                if signed and rng.random() < 0.5:
                    mag = -mag
                recs[j][f"op{slot}"] = op
                recs[j][f"m{slot}"] = mag
            if rng.random() < 0.2:
                recs[j]["flags"] = 2
        recs[j]["top"], recs[j]["left"], recs[j]["height"], recs[j]["width"] = top, left, h, w
    return recs


def random_tokens(rng: np.random.Generator, max_len: int = 77) -> np.ndarray:
    n = int(rng.integers(0, max_len - 1))
    return np.concatenate([[SOT], rng.integers(1, 49406, size=n), [EOT]]).astype(np.uint16)


def unit_rows(rng: np.random.Generator, rows: int, K: int, D: int) -> np.ndarray:
    """Random embeddings [rows, K*D] with each teacher's D-slice L2-normalised."""
    x = rng.standard_normal((rows, K, D)).astype(np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x.reshape(rows, K * D)


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
) -> str:
    """Write a store of `n` real-photo samples; samples listed in `corrupt` get undecodable image bytes."""
    rng = np.random.default_rng(seed)
    with StoreWriter(path, J=J, S=S, K=K, D=D, embedding_dtype=embedding_dtype, target_shard_bytes=target_shard_bytes) as w:
        for i in range(n):
            jpeg, width, height = photo_jpeg(rng, grayscale=grayscale_every > 0 and i % grayscale_every == grayscale_every - 1)
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
                    image_emb=unit_rows(rng, J, K, D),
                    text_emb=unit_rows(rng, 1 + S, K, D),
                    sha256=None,
                    flags=0,
                )
            )
    return os.fspath(path)
