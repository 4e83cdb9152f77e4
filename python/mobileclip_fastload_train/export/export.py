"""Export a checkpoint: load, fold, write both encoders and ``runtime.json`` into one directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from mobileclip_fastload.store.atomic import publishing, temp_name, write_json_atomic

from mobileclip_fastload_train.export.checkpoint import load_for_export
from mobileclip_fastload_train.export.encoders import (
    IMAGE_INPUT,
    IMAGE_OUTPUT,
    TEXT_INPUT,
    TEXT_OUTPUT,
    ImageEncoder,
    TextEncoder,
    example_image,
    example_tokens,
)
from mobileclip_fastload_train.export.runtime_config import RUNTIME_CONFIG, runtime_config
from mobileclip_fastload_train.models import CLIPModel

FORMATS = ("onnx", "coreml")
PRECISIONS = ("fp32", "fp16")
_SUFFIX = {"onnx": ".onnx", "coreml": ".mlpackage"}


def _write_onnx(
    encoder: torch.nn.Module, example: torch.Tensor, input_name: str, output_name: str, final: Path, precision: str
) -> None:
    from mobileclip_fastload_train.export.to_onnx import export_onnx

    with publishing(final) as tmp:
        export_onnx(encoder, example, input_name, output_name, tmp, precision)


def _write_coreml(
    encoder: torch.nn.Module, example: torch.Tensor, output_name: str, final: Path, precision: str
) -> None:
    from mobileclip_fastload_train.export.to_coreml import export_coreml

    # an .mlpackage is a directory: written beside, then renamed over the old one
    tmp = Path(f"{temp_name(final)}.mlpackage")  # coremltools insists on the suffix
    try:
        export_coreml(encoder, example, output_name, tmp, precision)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_encoders(
    model: CLIPModel,
    out_dir: str | os.PathLike[str],
    fmt: str = "onnx",
    precision: str = "fp32",
    name: str | None = None,
) -> Path:
    """Write ``image_encoder.<ext>``, ``text_encoder.<ext>`` and ``runtime.json`` for a folded
    model (see ``mobileclip_fastload_train.models.reparameterize``); returns the path of ``runtime.json``.
    ``name`` (default ``model.name``) is the model's name in ``runtime.json``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {FORMATS}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    files = {tower: f"{tower}_encoder{_SUFFIX[fmt]}" for tower in ("image", "text")}
    # batch 2: torch.export treats a size-1 axis as a constant, so the example must not have one
    graphs = (
        (ImageEncoder(model), example_image(model, batch=2), IMAGE_INPUT, IMAGE_OUTPUT, files["image"]),
        (TextEncoder(model), example_tokens(model, batch=2), TEXT_INPUT, TEXT_OUTPUT, files["text"]),
    )
    for encoder, example, input_name, output_name, file_name in graphs:
        if fmt == "onnx":
            _write_onnx(encoder, example, input_name, output_name, out_dir / file_name, precision)
        else:
            _write_coreml(encoder, example, output_name, out_dir / file_name, precision)
    path = out_dir / RUNTIME_CONFIG
    write_json_atomic(path, runtime_config(model, fmt, precision, files, name))
    return path


def export_model(
    checkpoint: str | os.PathLike[str],
    model_name: str,
    out_dir: str | os.PathLike[str],
    fmt: str = "onnx",
    precision: str = "fp32",
    **overrides: object,
) -> Path:
    """``mobileclip-fastload export``: load ``checkpoint`` into ``model_name``, fold, export."""
    model = load_for_export(checkpoint, model_name, **overrides)
    return export_encoders(model, out_dir, fmt, precision, name=model_name)
