"""The two graphs that are exported, as Apple ships them: image -> embedding, tokens -> embedding.

Each returns the L2-normalised embedding (what retrieval and zero-shot compare), so a
runtime needs no further step than the dot product (times ``logit_scale``, in ``runtime.json``).
Input and output names are the graphs' names in ONNX and Core ML alike.
"""

from __future__ import annotations

import torch
from mobileclip_fastload.tokenizer import EOT_TOKEN_ID, SOT_TOKEN_ID
from torch import nn

from mobileclip_fastload_train.models import CLIPModel

IMAGE_INPUT, IMAGE_OUTPUT = "image", "image_embedding"
TEXT_INPUT, TEXT_OUTPUT = "text", "text_embedding"


class ImageEncoder(nn.Module):
    """``[B, 3, S, S]`` float pixels, already resized, scaled to [0, 1] and normalised -> ``[B, D]``."""

    def __init__(self, model: CLIPModel) -> None:
        super().__init__()
        self.visual = model.visual

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.visual(image), dim=-1)


class TextEncoder(nn.Module):
    """``[B, context_length]`` token ids, zero-padded after EOT -> ``[B, D]``."""

    def __init__(self, model: CLIPModel) -> None:
        super().__init__()
        self.text = model.text

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text(text), dim=-1)


def example_image(model: CLIPModel, batch: int = 1, seed: int = 0) -> torch.Tensor:
    size = model.preprocess.image_size
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def example_tokens(model: CLIPModel, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """Random captions of different lengths, laid out as the tokenizer lays them out."""
    g = torch.Generator().manual_seed(seed)
    context = model.preprocess.context_length
    tokens = torch.zeros(batch, context, dtype=torch.long)
    for row in range(batch):
        n = int(torch.randint(1, context - 1, (1,), generator=g))
        tokens[row, 0] = SOT_TOKEN_ID
        tokens[row, 1 : n + 1] = torch.randint(1, SOT_TOKEN_ID, (n,), generator=g)
        tokens[row, min(n + 1, context - 1)] = EOT_TOKEN_ID
    return tokens
