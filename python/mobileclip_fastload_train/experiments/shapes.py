"""A small, learnable image-text world: coloured shapes with web-like and descriptive captions.

Each image shows one shape with four attributes (colour, shape, size,
position) on a noisy dark background. Captions come in three kinds:

* "real" captions imitate web alt-text: a quarter are unrelated to the image,
  the rest mention only one or two attributes, and one in ten of those gets an
  attribute wrong;
* "synthetic" captions imitate a captioning model (the role CoCa plays in the
  paper): full descriptions from varied templates, colour and shape always,
  size and position most of the time;
* evaluation captions use a wording found in neither of the above.

Everything is drawn with numpy from a seeded generator: no files, no downloads.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 220, 40),
    "magenta": (215, 50, 200),
    "cyan": (50, 210, 220),
    "orange": (245, 140, 30),
    "white": (235, 235, 235),
}
SHAPES = ("circle", "square", "triangle", "cross", "diamond", "ring")
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom")

_NOISE_CAPTIONS = (
    "my new wallpaper",
    "click here for more",
    "untitled",
    "photo",
    "best deals today",
    "screenshot",
    "check out my post",
    "image",
    "download now",
    "stock picture",
    "wallpaper hd",
    "free clipart",
)
_SYN_TEMPLATES = (
    "a {size} {colour} {shape} on the {position}",
    "a {colour} {shape} on the {position} of the image",
    "a picture of a {size} {colour} {shape}",
    "there is a {colour} {shape} on the {position}",
    "a {size} {shape} in {colour} on the {position}",
    "{colour} {shape}, {size}, on the {position}",
    "an illustration of a {colour} {shape}",
)
EVAL_TEMPLATE = "an image showing a {size} {colour} {shape} placed {position}"
ZERO_SHOT_TEMPLATES = {
    "shape": ("a photo of a {}.", "a drawing of a {}.", "a {} shape."),
    "colour": ("a photo of something {}.", "a {} object.", "the colour {}."),
}


@dataclass(frozen=True)
class Attributes:
    colour: str
    shape: str
    size: str
    position: str

    def as_dict(self) -> dict[str, str]:
        return {"colour": self.colour, "shape": self.shape, "size": self.size, "position": self.position}


ALL_COMBINATIONS = [Attributes(*a) for a in itertools.product(COLOURS, SHAPES, SIZES, POSITIONS)]


def random_attributes(rng: np.random.Generator) -> Attributes:
    return Attributes(
        str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)), str(rng.choice(SIZES)), str(rng.choice(POSITIONS))
    )


def _shape_mask(shape: str, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        return dy**2 + dx**2 <= r**2
    if shape == "ring":
        d2 = dy**2 + dx**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    if shape == "square":
        return (np.abs(dy) <= 0.85 * r) & (np.abs(dx) <= 0.85 * r)
    if shape == "diamond":
        return np.abs(dy) + np.abs(dx) <= r
    if shape == "cross":
        arm = 0.3 * r
        return ((np.abs(dy) <= arm) & (np.abs(dx) <= r)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= r))
    if shape == "triangle":  # apex up
        return (dy <= 0.8 * r) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    raise ValueError(f"unknown shape {shape!r}")


def render(attrs: Attributes, rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """``[3, size, size]`` uint8 image of one shape."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    radius = size * (0.16 if attrs.size == "small" else 0.26) * rng.uniform(0.9, 1.1)
    centre = size / 2
    offset = size * 0.26
    cy, cx = {
        "left": (centre, centre - offset),
        "right": (centre, centre + offset),
        "top": (centre - offset, centre),
        "bottom": (centre + offset, centre),
    }[attrs.position]
    cy += rng.uniform(-2, 2)
    cx += rng.uniform(-2, 2)
    background = rng.uniform(0, 70, size=3)
    img = np.broadcast_to(background[:, None, None], (3, size, size)).copy()
    mask = _shape_mask(attrs.shape, yy, xx, cy, cx, radius)
    colour = np.asarray(COLOURS[attrs.colour], dtype=np.float32) * rng.uniform(0.85, 1.0)
    img[:, mask] = colour[:, None]
    img += rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def real_caption(attrs: Attributes, rng: np.random.Generator) -> str:
    """Web-like alt-text: often uninformative, partial, sometimes wrong."""
    if rng.random() < 0.25:
        return str(rng.choice(_NOISE_CAPTIONS))
    values = attrs.as_dict()
    keys = list(rng.choice(list(values), size=int(rng.integers(1, 3)), replace=False))
    if rng.random() < 0.1:  # one wrong attribute
        k = keys[0]
        pool = {"colour": list(COLOURS), "shape": SHAPES, "size": SIZES, "position": POSITIONS}[k]
        values[k] = str(rng.choice([v for v in pool if v != values[k]]))
    words = [
        values[k] if k != "position" else f"on the {values[k]}"
        for k in ("size", "colour", "shape", "position")
        if k in keys
    ]
    if "shape" not in keys:
        words.insert(len([k for k in keys if k in ("size", "colour")]), "thing")
    return " ".join(words)


def synthetic_captions(attrs: Attributes, rng: np.random.Generator, count: int) -> list[str]:
    """Captioner-like full descriptions (colour and shape always; size/position usually)."""
    out = []
    for template in rng.choice(_SYN_TEMPLATES, size=count, replace=count > len(_SYN_TEMPLATES)):
        values = attrs.as_dict()
        text = str(template).format(**values)
        out.append(text)
    return out


def eval_caption(attrs: Attributes) -> str:
    return EVAL_TEMPLATE.format(**attrs.as_dict())
