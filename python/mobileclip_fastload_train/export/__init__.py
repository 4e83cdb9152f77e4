"""Deploy a trained MobileCLIP: reparameterise, then write the image and text encoders as
separate graphs (ONNX or Core ML) plus the JSON a runtime needs (``runtime.json``).

    mobileclip-fastload export CHECKPOINT --model NAME --format onnx|coreml [--precision fp16] -o DIR
"""

from mobileclip_fastload_train.export.checkpoint import load_for_export
from mobileclip_fastload_train.export.encoders import (
    ImageEncoder,
    TextEncoder,
    example_image,
    example_tokens,
)
from mobileclip_fastload_train.export.export import FORMATS, PRECISIONS, export_model
from mobileclip_fastload_train.export.runtime_config import RUNTIME_CONFIG, runtime_config

__all__ = [
    "FORMATS",
    "PRECISIONS",
    "RUNTIME_CONFIG",
    "ImageEncoder",
    "TextEncoder",
    "example_image",
    "example_tokens",
    "export_model",
    "load_for_export",
    "runtime_config",
]
