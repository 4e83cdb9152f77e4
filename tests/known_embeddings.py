"""A CLIP model whose embeddings are known in closed form, and benchmark layouts built for it.

Image embedding: the image's per-channel mean (solid-colour images: the colour / 255).
Text embedding: the sum, over the caption's tokens, of a colour word's RGB direction
("red" -> (1,0,0), "yellow" -> (1,1,0), ...; every other token -> 0). So a prompt like
"a photo of a yellow." embeds as (1,1,0), and every metric can be computed from the colours
and the words alone (``expected_*``), independently of the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from mobileclip_fastload_train.models import CLIPModel, Preprocess
from PIL import Image
from torch import nn

MODEL_NAME = "known-rgb"
COLOUR_WORDS = {
    "red": (1, 0, 0),
    "green": (0, 1, 0),
    "blue": (0, 0, 1),
    "yellow": (1, 1, 0),
    "teal": (0, 1, 1),
    "magenta": (1, 0, 1),
}
IMAGE_SIZE = 32


class MeanColour(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))  # something to optimise (trained with lr 0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3)) * self.gain


class ColourWords(nn.Module):
    def __init__(self, vocab_size: int = 49408) -> None:
        super().__init__()
        from open_clip.tokenizer import SimpleTokenizer

        tok = SimpleTokenizer()
        table = torch.zeros(vocab_size, 3)
        for word, rgb in COLOUR_WORDS.items():
            ids = tok.encode(word)
            assert len(ids) == 1, word
            table[ids[0]] = torch.tensor(rgb, dtype=torch.float32)
        self.register_buffer("table", table)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table[tokens].sum(dim=1)


def build_known_model(**_: object) -> CLIPModel:
    return CLIPModel(MeanColour(), ColourWords(), Preprocess(image_size=IMAGE_SIZE), MODEL_NAME)


def register(monkeypatch) -> None:
    """Make ``--model known-rgb`` available to the code a user runs (the factory's table)."""
    from mobileclip_fastload_train.models import factory

    monkeypatch.setitem(factory._BUILDERS, MODEL_NAME, build_known_model)


# ------------------------------------------------------------------ data
def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _save_solid(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # not square, so the evaluation transform's resize + centre crop run for real
    Image.fromarray(np.broadcast_to(rgb.astype(np.uint8), (40, 52, 3)).copy()).save(path)


def _random_colours(rng: np.random.Generator, n: int, directions: np.ndarray) -> np.ndarray:
    """Colours whose cosine scores against ``directions`` have no near-ties (ranks well defined)."""
    out = []
    while len(out) < n:
        c = rng.integers(10, 256, 3)
        s = np.sort(_normalise(c.astype(float)) @ directions.T)
        if np.min(np.diff(s)) > 1e-3:
            out.append(c)
    return np.stack(out)


CLASSES = sorted(COLOUR_WORDS)  # ImageFolder numbers the class folders in sorted order
CLASS_DIRECTIONS = _normalise(np.array([COLOUR_WORDS[c] for c in CLASSES], dtype=float))


def make_class_folders(root: Path, n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``root/<class>/<i>.png`` solid images with random labels; returns (colours, labels)."""
    rng = np.random.default_rng(seed)
    colours = _random_colours(rng, n, CLASS_DIRECTIONS)
    labels = rng.integers(0, len(CLASSES), n)
    for i, (c, y) in enumerate(zip(colours, labels)):
        _save_solid(root / CLASSES[y] / f"{i:03d}.png", c)
    return colours, labels


def expected_zero_shot(colours: np.ndarray, labels: np.ndarray, ks=(1, 5)) -> dict[str, float]:
    scores = _normalise(colours / 255.0) @ CLASS_DIRECTIONS.T
    order = np.argsort(-scores, axis=1)
    return {f"acc{k}": float(np.mean([labels[i] in order[i, :k] for i in range(len(labels))])) for k in ks}


def make_captions(rng_seed: int, n_images: int, captions_per_image: int = 2):
    """Random colours and random colour-word captions; (colours, captions per image).
    Every caption points another way and no scores nearly tie, so every ranking is well defined."""
    rng = np.random.default_rng(rng_seed)
    words = list(COLOUR_WORDS)
    flat: list[str] = []
    while len(flat) < n_images * captions_per_image:
        caption = " ".join(rng.choice(words, size=rng.integers(1, 5)))
        d = _normalise(caption_vector(caption))
        if all(d @ _normalise(caption_vector(c)) < 1 - 1e-6 for c in flat):
            flat.append(caption)
    directions = _normalise(np.stack([caption_vector(c) for c in flat]))
    while True:
        colours = _random_colours(rng, n_images, directions)
        columns = np.sort(_normalise(colours.astype(float)) @ directions.T, axis=0)
        if np.min(np.diff(columns, axis=0)) > 1e-3:
            break
    captions = [flat[i * captions_per_image : (i + 1) * captions_per_image] for i in range(n_images)]
    return colours, captions


def caption_vector(caption: str) -> np.ndarray:
    return np.sum([COLOUR_WORDS[w] for w in caption.split()], axis=0).astype(float)


def expected_retrieval(colours: np.ndarray, captions: list[list[str]], ks=(1, 5, 10)) -> dict[str, float]:
    img = _normalise(colours / 255.0)
    flat = [c for caps in captions for c in caps]
    owner = np.array([i for i, caps in enumerate(captions) for _ in caps])
    txt = _normalise(np.stack([caption_vector(c) for c in flat]))
    sim = img @ txt.T  # [images, captions]
    out = {}
    for k in ks:
        # text -> image ("image retrieval"): the caption's image among the k best images
        t2i = [owner[t] in np.argsort(-sim[:, t], kind="stable")[:k] for t in range(len(flat))]
        # image -> text ("text retrieval"): any of the image's captions among the k best captions
        i2t = [np.any(owner[np.argsort(-sim[i], kind="stable")[:k]] == i) for i in range(len(img))]
        out[f"image_retrieval_recall@{k}"] = float(np.mean(t2i))
        out[f"text_retrieval_recall@{k}"] = float(np.mean(i2t))
    return out


def write_karpathy(root: Path, colours: np.ndarray, captions: list[list[str]]) -> Path:
    images = []
    for i, (c, caps) in enumerate(zip(colours, captions)):
        _save_solid(root / "images" / f"{i:03d}.jpg.png", c)
        images.append(
            {
                "filepath": "images",
                "filename": f"{i:03d}.jpg.png",
                "split": "test",
                "sentences": [{"raw": s} for s in caps],
            }
        )
    # one image of another split, which must be left out
    _save_solid(root / "images" / "train.png", np.array([255, 0, 0]))
    images.append({"filepath": "images", "filename": "train.png", "split": "train", "sentences": [{"raw": "red"}]})
    path = root / "dataset_test.json"
    path.write_text(json.dumps({"images": images}))
    return path


def write_coco(images_dir: Path, annotation_file: Path, colours: np.ndarray, captions: list[list[str]]) -> None:
    images, annotations = [], []
    for i, (c, caps) in enumerate(zip(colours, captions)):
        name = f"COCO_val2014_{i:012d}.png"
        _save_solid(images_dir / name, c)
        images.append({"id": 100 + i, "file_name": name})
        annotations += [{"id": len(annotations) + j, "image_id": 100 + i, "caption": s} for j, s in enumerate(caps)]
    annotation_file.write_text(json.dumps({"images": images, "annotations": annotations}))
