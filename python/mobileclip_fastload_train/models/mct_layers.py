"""Transformer pieces of MCt, laid out like Apple's ml-mobileclip text encoder.

The module and parameter names (``pre_norm_mha.1.qkv_proj``,
``positional_embedding.pos_embed.pos_embed``, ...) mirror Apple's layout so a
published checkpoint's ``text_encoder.*`` keys load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNormFP32(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (stable under bf16 autocast)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = torch.promote_types(x.dtype, torch.float32)  # float64 stays float64
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = F.layer_norm(
                x.to(dtype),
                self.normalized_shape,
                self.weight.to(dtype) if self.weight is not None else None,
                self.bias.to(dtype) if self.bias is not None else None,
                self.eps,
            )
        return out.to(x.dtype)


class LearnablePositionalEmbedding(nn.Module):
    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.pos_embed = nn.Parameter(torch.empty(1, 1, num_embeddings, embedding_dim))
        nn.init.trunc_normal_(self.pos_embed, mean=0.0, std=embedding_dim**-0.5)

    def forward(self, seq_len: int) -> torch.Tensor:
        if seq_len != self.num_embeddings:
            raise ValueError(f"MCt was built for {self.num_embeddings} tokens, got sequences of {seq_len}")
        return self.pos_embed.reshape(1, seq_len, self.embedding_dim)


class PositionalEmbedding(nn.Module):
    """Wrapper kept only so the parameter is named ``pos_embed.pos_embed`` as in Apple's checkpoints."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.pos_embed = LearnablePositionalEmbedding(num_embeddings, embedding_dim)

    def forward(self, seq_len: int) -> torch.Tensor:
        return self.pos_embed(seq_len)


class MultiHeadAttention(nn.Module):
    """Self-attention with one fused ``qkv_proj`` (q, k, v stacked in that order)."""

    def __init__(self, embed_dim: int, num_heads: int, attn_dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.attn_dropout = attn_dropout
        self.qkv_proj = nn.Linear(embed_dim, 3 * embed_dim, bias=True)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=True)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        b, n, c = x.shape
        # [B, N, 3C] -> [3, B, heads, N, head_dim]
        qkv = self.qkv_proj(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            qkv[0],
            qkv[1],
            qkv[2],
            dropout_p=self.attn_dropout if self.training else 0.0,
            is_causal=causal,
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class TransformerEncoder(nn.Module):
    """Pre-norm transformer layer: ``x + MHA(LN(x))`` then ``x + FFN(LN(x))``."""

    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        # Sequential indices are part of the state-dict names (pre_norm_ffn.1 / .4 are the linears).
        self.pre_norm_mha = nn.Sequential(
            LayerNormFP32(embed_dim),
            MultiHeadAttention(embed_dim, num_heads),
            nn.Dropout(dropout),
        )
        self.pre_norm_ffn = nn.Sequential(
            LayerNormFP32(embed_dim),
            nn.Linear(embed_dim, ffn_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_dim, embed_dim),
            nn.Dropout(dropout),
        )
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        norm, attn, drop = self.pre_norm_mha
        x = x + drop(attn(norm(x), causal=causal))
        return x + self.pre_norm_ffn(x)
