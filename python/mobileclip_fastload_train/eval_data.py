"""Evaluation sets in the layouts benchmarks ship in, and the evaluation transform.

* Zero-shot: an ImageNet-style folder of class folders (``root/<class>/<image>``, torchvision's
  ``ImageFolder``). Class names come from a file when given (a JSON list, a JSON object keyed by
  folder name, or one name per line), else from open_clip's ``IMAGENET_CLASSNAMES`` when the folder
  has ImageNet's 1000 classes, else from the folder names. Templates: open_clip's
  ``OPENAI_IMAGENET_TEMPLATES`` or a file (JSON list or one per line, ``{}`` marks the class name).
* Retrieval: an image folder and a captions JSON, either Karpathy's split file
  (``{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw"}]}]}``) or COCO's captions
  file (``{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from mobileclip_fastload_train.models import Preprocess

#: open_clip's MobileCLIP evaluation resampling (training replays bicubic, see ``Preprocess``).
EVAL_INTERPOLATION = "bilinear"
_WORDNET_ID = re.compile(r"n\d{8}")


def eval_transform(preprocess: Preprocess) -> Callable[[Image.Image], torch.Tensor]:
    """open_clip's evaluation transform for the model: resize the shorter side, centre crop, normalise."""
    from open_clip.transform import image_transform

    return image_transform(
        preprocess.image_size,
        is_train=False,
        mean=preprocess.mean,
        std=preprocess.std,
        resize_mode="shortest",
        interpolation=EVAL_INTERPOLATION,
    )


def _read_list(path: Path) -> list[str] | dict[str, str]:
    text = path.read_text()
    if path.suffix == ".json":
        value = json.loads(text)
        if not isinstance(value, (list, dict)):
            raise ValueError(f"{path}: expected a JSON list or object, got {type(value).__name__}")
        return value
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass
class ClassFolderSet:
    """A zero-shot classification set: images by class folder, class names and prompt templates."""

    dataset: torch.utils.data.Dataset  # yields (image tensor, class index)
    class_names: list[str]
    templates: list[str]


def load_class_folder(
    root: str | Path,
    transform: Callable,
    class_names_file: str | Path | None = None,
    templates_file: str | Path | None = None,
) -> ClassFolderSet:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES
    from torchvision.datasets import ImageFolder

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"zero-shot set {root}: not a directory of class folders")
    dataset = ImageFolder(str(root), transform=transform)
    folders: list[str] = dataset.classes
    if class_names_file is not None:
        given = _read_list(Path(class_names_file))
        if isinstance(given, dict):
            missing = [f for f in folders if f not in given]
            if missing:
                raise ValueError(f"{class_names_file}: no class name for folder(s) {missing[:5]} of {root}")
            names = [given[f] for f in folders]
        else:
            names = list(given)
    elif len(folders) == len(IMAGENET_CLASSNAMES):
        names = list(IMAGENET_CLASSNAMES)  # folders sorted by WordNet id: open_clip's order
    elif any(_WORDNET_ID.fullmatch(f) for f in folders):
        raise ValueError(
            f"zero-shot set {root}: {len(folders)} WordNet-id folders (not ImageNet's 1000); "
            "give their class names in a file (--val-classnames)"
        )
    else:
        names = [f.replace("_", " ") for f in folders]
    if len(names) != len(folders):
        raise ValueError(f"{class_names_file}: {len(names)} class names for {len(folders)} class folders in {root}")
    templates = list(OPENAI_IMAGENET_TEMPLATES) if templates_file is None else _read_list(Path(templates_file))
    if not isinstance(templates, list) or not templates:
        raise ValueError(f"{templates_file}: expected a non-empty list of templates")
    # open_clip's templates are callables (lambda c: f"a photo of a {c}."); a file's are "{}" strings
    return ClassFolderSet(dataset, names, [t if callable(t) else str(t) for t in templates])


def prompt(template: Callable[[str], str] | str, class_name: str) -> str:
    """A template is open_clip's callable, or a string with ``{}`` or clip_benchmark's ``{c}``."""
    return template(class_name) if callable(template) else template.format(class_name, c=class_name)


class _ImageFiles(torch.utils.data.Dataset):
    def __init__(self, paths: Sequence[Path], transform: Callable) -> None:
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        with Image.open(self.paths[i]) as im:
            return self.transform(im.convert("RGB"))


@dataclass
class RetrievalSet:
    """Images and their captions; ``caption_image[t]`` is the index of caption ``t``'s image."""

    images: torch.utils.data.Dataset  # yields image tensors
    captions: list[str]
    caption_image: torch.Tensor


def load_captions(
    images_root: str | Path, captions_json: str | Path, transform: Callable, split: str = "test"
) -> RetrievalSet:
    """Karpathy split file (images of ``split``) or COCO captions file (all its images)."""
    images_root, captions_json = Path(images_root), Path(captions_json)
    data = json.loads(captions_json.read_text())
    entries: list[tuple[Path, list[str]]] = []
    if isinstance(data, dict) and "annotations" in data:  # COCO
        by_id: dict[int, list[str]] = {}
        for a in data["annotations"]:
            by_id.setdefault(a["image_id"], []).append(a["caption"])
        entries = [(images_root / im["file_name"], by_id.get(im["id"], [])) for im in data["images"]]
    elif isinstance(data, dict) and "images" in data:  # Karpathy
        for im in data["images"]:
            if im.get("split", split) == split:
                path = images_root / im.get("filepath", "") / im["filename"]
                entries.append((path, [s["raw"] for s in im["sentences"]]))
    else:
        raise ValueError(f"{captions_json}: neither a Karpathy split file nor a COCO captions file")
    if not entries:
        raise ValueError(f"{captions_json}: no images (split {split!r})")
    for path, caps in entries:
        if not caps:
            raise ValueError(f"{captions_json}: image {path.name} has no caption")
        if not path.is_file():
            raise FileNotFoundError(f"{captions_json}: image {path} not found")
    captions = [c for _, caps in entries for c in caps]
    caption_image = torch.tensor([i for i, (_, caps) in enumerate(entries) for _ in caps])
    return RetrievalSet(_ImageFiles([p for p, _ in entries], transform), captions, caption_image)
