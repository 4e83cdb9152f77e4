"""``runtime.json``: what a runtime needs beside the two graphs to embed images and text.

The numbers come from the model (``CLIPModel.preprocess``, the towers' output width,
``logit_scale``) and the tokenizer module; nothing here restates a model fact.
"""

from __future__ import annotations

import math

import torch
from mobileclip_fastload.tokenizer import EOT_TOKEN_ID, SOT_TOKEN_ID, VOCAB_SIZE

from mobileclip_fastload_train.export.encoders import IMAGE_INPUT, IMAGE_OUTPUT, TEXT_INPUT, TEXT_OUTPUT
from mobileclip_fastload_train.models import CLIPModel

RUNTIME_CONFIG = "runtime.json"
#: The tokenizer's name as a DR store's manifest spells it (OpenAI CLIP BPE, ids as open_clip's).
TOKENIZER_NAME = "openai-clip-bpe"
#: ONNX Runtime's graph optimisation level for fp16 graphs: onnxruntime 1.32's CPU provider crashes
#: (segfault) creating a session for the full-size open_clip text tower in fp16 at the default level
#: ("all"; its NchwcTransformer); "extended" loads and runs it.
ONNX_FP16_OPTIMIZATION = "extended"
#: Inference resize of Apple's and open_clip's MobileCLIP evaluation transform: shortest side to
#: image_size (bilinear), then a centre crop. Training replays crops bicubic (Preprocess.interpolation).
EVAL_INTERPOLATION = "bilinear"


def runtime_config(
    model: CLIPModel, fmt: str, precision: str, files: dict[str, str], name: str | None = None
) -> dict[str, object]:
    """``files`` maps ``"image"`` / ``"text"`` to the graph files written beside the JSON;
    ``name`` (default ``model.name``) is the name ``create_model`` knows the model by."""
    pre = model.preprocess
    with torch.no_grad():
        embed_dim = int(model.text(torch.zeros(1, pre.context_length, dtype=torch.long)).shape[-1])
    config: dict[str, object] = {
        "model": name or model.name,
        "format": fmt,
        "precision": precision,
        "embedding_dim": embed_dim,
        "embeddings_normalized": True,
        "logit_scale": math.exp(model.logit_scale.item()),
        "image": {
            "file": files["image"],
            "input": IMAGE_INPUT,
            "output": IMAGE_OUTPUT,
            "layout": "NCHW, RGB, float32 in [0, 1] then (x - mean) / std",
            "image_size": pre.image_size,
            "mean": list(pre.mean),
            "std": list(pre.std),
            "resize": "shortest side to image_size, then centre crop",
            "interpolation": EVAL_INTERPOLATION,
            "training_interpolation": pre.interpolation,
        },
        "text": {
            "file": files["text"],
            "input": TEXT_INPUT,
            "output": TEXT_OUTPUT,
            "tokenizer": TOKENIZER_NAME,
            "context_length": pre.context_length,
            "vocab_size": VOCAB_SIZE,
            "sot_token_id": SOT_TOKEN_ID,
            "eot_token_id": EOT_TOKEN_ID,
            "padding": "zeros after EOT; a longer caption is cut to context_length with EOT last",
        },
    }
    if fmt == "onnx":
        config["onnxruntime_graph_optimization"] = ONNX_FP16_OPTIMIZATION if precision == "fp16" else "all"
    return config
