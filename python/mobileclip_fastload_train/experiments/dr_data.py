"""Dataset-reinforcement plumbing for the small experiments: images kept once as
PNG bytes plus J RandomResizedCrop boxes, views rebuilt by exact replay, and a
DR store written with ``mobileclip_fastload``'s writer for the Rust loader.

Replay uses the extension's ``replay_augmentation`` when it is built and
Pillow + torchvision otherwise; the two are bit-identical (the extension's
contract), so the in-memory path and the store + loader path feed a student the
same pixels.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF


def store_available() -> bool:
    """Whether ``mobileclip_fastload`` and its compiled extension import."""
    try:
        import mobileclip_fastload._core  # noqa: F401
    except ImportError:
        return False
    return True


def encode_png(chw: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0))).save(buf, format="PNG")
    return buf.getvalue()


def rrc_boxes(
    rng: np.random.Generator,
    n: int,
    count: int,
    size: int,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> np.ndarray:
    """``[n, count, 4]`` int (top, left, height, width) boxes, drawn like torchvision's RandomResizedCrop."""
    out = np.zeros((n, count, 4), dtype=np.int64)
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    area = size * size
    for i in range(n):
        for j in range(count):
            box = (0, 0, size, size)
            for _ in range(10):
                target = area * rng.uniform(*scale)
                r = math.exp(rng.uniform(*log_ratio))
                w, h = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
                if 0 < w <= size and 0 < h <= size:
                    box = (int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1)), h, w)
                    break
            out[i, j] = box
    return out


def replay(png: bytes, box: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    """``[3, size, size]`` uint8: crop ``box`` (top, left, height, width) and resize, Pillow-exact."""
    top, left, height, width = (int(v) for v in box)
    try:
        from mobileclip_fastload._core import replay_augmentation

        hwc = replay_augmentation(png, top, left, height, width, [], size, interpolation)
    except ImportError:
        img = Image.open(io.BytesIO(png)).convert("RGB")
        img = TF.resized_crop(img, top, left, height, width, [size, size], InterpolationMode(interpolation))
        hwc = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))


def replay_all(pngs: list[bytes], boxes: np.ndarray, size: int, interpolation: str) -> torch.Tensor:
    """``[N, J, 3, size, size]`` uint8 views of every stored box."""
    n, j = boxes.shape[:2]
    out = np.empty((n, j, 3, size, size), dtype=np.uint8)
    for i in range(n):
        for k in range(j):
            out[i, k] = replay(pngs[i], boxes[i, k], size, interpolation)
    return torch.from_numpy(out)


def _unpadded(tokens: torch.Tensor) -> np.ndarray:
    row = tokens.numpy()
    return row[row != 0].astype(np.uint16)


def write_dr_store(
    path: str | os.PathLike[str],
    pngs: list[bytes],
    canvas: int,
    boxes: np.ndarray,
    captions: list[str],
    text: torch.Tensor,
    syn_captions: list[list[str]],
    syn_text: torch.Tensor,
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    num_teachers: int,
) -> str:
    """Write the reinforced set as a DR store (float16 embeddings, boxes without RandAugment ops)."""
    from mobileclip_fastload.store import AUG_DTYPE, Sample, StoreWriter, aug_record

    n, j = boxes.shape[:2]
    s = syn_text.shape[1]
    d = image_emb.shape[-1] // num_teachers
    with StoreWriter(
        path,
        J=j,
        S=s,
        K=num_teachers,
        D=d,
        embedding_dtype="float16",
        overwrite=True,
        metadata={"source": "mobileclip_fastload_train.experiments (procedural shapes)"},
    ) as writer:
        for i in range(n):
            writer.add(
                Sample(
                    uid=f"shape-{i:06d}",
                    image=pngs[i],
                    width=canvas,
                    height=canvas,
                    orig_width=canvas,
                    orig_height=canvas,
                    caption=captions[i],
                    caption_tokens=_unpadded(text[i]),
                    syn_captions=list(syn_captions[i]),
                    syn_tokens=[_unpadded(t) for t in syn_text[i]],
                    aug=np.array([aug_record(b) for b in boxes[i]], dtype=AUG_DTYPE),
                    image_emb=image_emb[i].numpy(),
                    text_emb=text_emb[i].numpy(),
                )
            )
    return os.fspath(path)
