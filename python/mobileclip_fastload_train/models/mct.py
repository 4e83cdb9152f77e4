"""MCt: MobileCLIP-S0's text encoder (arXiv 2311.17049, section 4).

Token embedding + learned positions, then a Text-RepMixer block, ``n`` pre-norm
transformer layers and another Text-RepMixer block, a final LayerNorm, pooling
at the EOT token (the highest token id in each row) and a linear projection
without bias. S0 uses no causal mask. Layout and parameter names follow
Apple's ml-mobileclip ``TextTransformer`` (variant ``mct``): its
``text_encoder.*`` state dict loads into this module after stripping the prefix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.utils.checkpoint
from torch import nn

from mobileclip_fastload_train.models.mct_layers import LayerNormFP32, PositionalEmbedding, TransformerEncoder
from mobileclip_fastload_train.models.text_repmixer import RepMixerBlock


@dataclass(frozen=True)
class MCtConfig:
    context_length: int = 77
    vocab_size: int = 49408
    dim: int = 512
    n_transformer_layers: int = 4
    n_heads: int = 8
    ffn_multiplier: float = 4.0
    repmixer_kernel_size: int = 11
    causal_masking: bool = False
    projection_dim: int = 512
    embed_dropout: float = 0.0

    @property
    def ffn_dim(self) -> int:
        # Apple rounds the FFN width up to a multiple of 16.
        return int(math.ceil(self.dim * self.ffn_multiplier / 16.0) * 16)


class MCt(nn.Module):
    def __init__(self, cfg: MCtConfig = MCtConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.context_length = cfg.context_length
        self.vocab_size = cfg.vocab_size
        self.embedding_layer = nn.Embedding(cfg.vocab_size, cfg.dim)
        nn.init.normal_(self.embedding_layer.weight, std=cfg.dim**-0.5)
        self.positional_embedding = PositionalEmbedding(cfg.context_length, cfg.dim)
        self.embedding_dropout = nn.Dropout(cfg.embed_dropout)

        layers: list[nn.Module] = [RepMixerBlock(cfg.dim, kernel_size=cfg.repmixer_kernel_size)]
        layers += [TransformerEncoder(cfg.dim, cfg.n_heads, cfg.ffn_dim) for _ in range(cfg.n_transformer_layers)]
        layers.append(RepMixerBlock(cfg.dim, kernel_size=cfg.repmixer_kernel_size))
        self.transformer = nn.ModuleList(layers)

        self.grad_checkpointing = False
        self.final_layer_norm = LayerNormFP32(cfg.dim)
        self.projection_layer = nn.Parameter(torch.empty(cfg.dim, cfg.projection_dim))
        nn.init.normal_(self.projection_layer, std=cfg.dim**-0.5)

    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-token features after the final LayerNorm, ``[B, L, dim]``."""
        if tokens.dim() != 2:
            raise ValueError(
                f"MCt expects token ids of shape [batch, {self.context_length}], got {tuple(tokens.shape)}"
            )
        x = self.embedding_layer(tokens) + self.positional_embedding(tokens.shape[1]).to(
            self.embedding_layer.weight.dtype
        )
        x = self.embedding_dropout(x)
        checkpointed = self.grad_checkpointing and torch.is_grad_enabled()
        for layer in self.transformer:
            kwargs = {"causal": self.cfg.causal_masking} if isinstance(layer, TransformerEncoder) else {}
            if checkpointed:
                x = torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=False, **kwargs)
            else:
                x = layer(x, **kwargs)
        return self.final_layer_norm(x)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.forward_tokens(tokens)
        # EOT pooling: the EOT id (49407) is the largest id in every row.
        eot = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        return eot @ self.projection_layer.to(eot.dtype)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each layer's activations in backward instead of storing them (as timm / open_clip)."""
        self.grad_checkpointing = enable

    def reparameterize(self) -> None:
        """Fold every Text-RepMixer branch (and ConvFFN's conv+BN) for inference, in place."""

        def fold(parent: nn.Module) -> None:
            for child in parent.children():
                if hasattr(child, "reparameterize"):
                    child.reparameterize()  # folds its own sub-branches
                else:
                    fold(child)

        fold(self)
