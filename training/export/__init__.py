"""Deploy a trained MobileCLIP: reparameterise, then write the image and text encoders as
separate graphs (ONNX or Core ML) plus the JSON a runtime needs (``runtime.json``).

    mobileclip-fastload export CHECKPOINT --model NAME --format onnx|coreml [--precision fp16] -o DIR
"""

from training.export.checkpoint import load_for_export
from training.export.encoders import (
    ImageEncoder,
    TextEncoder,
    example_image,
    example_tokens,
)
from training.export.export import FORMATS, PRECISIONS, export_model
from training.export.runtime_config import RUNTIME_CONFIG, runtime_config

__all__ = [
    "FORMATS", "PRECISIONS", "RUNTIME_CONFIG", "ImageEncoder", "TextEncoder", "example_image", "example_tokens",
    "export_model", "load_for_export", "runtime_config",
]
