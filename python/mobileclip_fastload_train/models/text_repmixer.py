"""Text-RepMixer block of MCt (MobileCLIP-S0's text encoder).

A RepMixer (FastViT's reparameterisable token mixer) applied along the token
axis: a depthwise conv of kernel 11 over the 77 tokens whose train-time form is
a sum of BatchNorm'd branches plus a skip, and which folds into one conv with
bias at inference. Followed by a ConvFFN (depthwise token conv + BN, then a
1x1 conv MLP).

Tokens are laid out as ``[B, D, 1, L]`` and the convs are ``Conv2d`` with kernel
``(1, k)`` so parameter names and shapes match Apple's ml-mobileclip
(``token_mixer.mixer.rbr_conv.0.conv.weight`` is ``[D, 1, 1, k]``), which lets a
published MobileCLIP-S0 text checkpoint load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def _fold_bn(weight: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of ``bn(conv(x, weight))`` as one conv (inference statistics)."""
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    return weight * scale.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


class RepDWConv(nn.Module):
    """Depthwise ``(1, k)`` conv built from reparameterisable branches.

    Train time: ``BN(x)`` (skip branch) + sum of ``BN(conv_i(x))``.
    Inference (after :meth:`reparameterize`): one depthwise conv with bias.
    Attribute names follow Apple's ``MobileOneBlock`` (``rbr_skip``,
    ``rbr_conv``, ``reparam_conv``); the scale branch never exists for a
    ``(1, k)`` kernel there, so it is not built here either.
    """

    def __init__(self, dim: int, kernel_size: int, num_conv_branches: int) -> None:
        super().__init__()
        self.dim = dim
        self.kernel_size = kernel_size
        self.rbr_skip: nn.BatchNorm2d | None = nn.BatchNorm2d(dim)
        self.rbr_conv: nn.ModuleList | None = None
        if num_conv_branches > 0:
            self.rbr_conv = nn.ModuleList(self._conv_bn() for _ in range(num_conv_branches))
        self.reparam_conv: nn.Conv2d | None = None

    def _conv(self, bias: bool) -> nn.Conv2d:
        return nn.Conv2d(
            self.dim,
            self.dim,
            kernel_size=(1, self.kernel_size),
            padding=(0, self.kernel_size // 2),
            groups=self.dim,
            bias=bias,
        )

    def _conv_bn(self) -> nn.Sequential:
        branch = nn.Sequential()
        branch.add_module("conv", self._conv(bias=False))
        branch.add_module("bn", nn.BatchNorm2d(self.dim))
        return branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        out = self.rbr_skip(x) if self.rbr_skip is not None else 0
        if self.rbr_conv is not None:
            for branch in self.rbr_conv:
                out = out + branch(x)
        return out

    def identity_kernel(self) -> torch.Tensor:
        """The depthwise kernel that reproduces its input (1 at the centre tap)."""
        ref = self.reparam_conv.weight if self.reparam_conv is not None else self.rbr_skip.weight
        kernel = torch.zeros(self.dim, 1, 1, self.kernel_size, dtype=ref.dtype, device=ref.device)
        kernel[:, 0, 0, self.kernel_size // 2] = 1.0
        return kernel

    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Kernel and bias of the single conv equal to the sum of branches (eval mode)."""
        if self.reparam_conv is not None:
            return self.reparam_conv.weight, self.reparam_conv.bias
        kernel = torch.zeros_like(self.identity_kernel())
        bias = torch.zeros(self.dim, dtype=kernel.dtype, device=kernel.device)
        if self.rbr_skip is not None:
            k, b = _fold_bn(self.identity_kernel(), self.rbr_skip)
            kernel, bias = kernel + k, bias + b
        if self.rbr_conv is not None:
            for branch in self.rbr_conv:
                k, b = _fold_bn(branch.conv.weight, branch.bn)
                kernel, bias = kernel + k, bias + b
        return kernel, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.reparam_conv is not None:
            return
        kernel, bias = self.fused_kernel_bias()
        conv = self._conv(bias=True).to(device=kernel.device, dtype=kernel.dtype)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
        self.rbr_skip = None
        self.rbr_conv = None
        self.reparam_conv = conv


class RepMixer(nn.Module):
    """``x + layer_scale * (mixer(x) - norm(x))``; folds into one depthwise conv."""

    def __init__(self, dim: int, kernel_size: int = 11, layer_scale_init_value: float = 1e-5) -> None:
        super().__init__()
        self.dim = dim
        self.kernel_size = kernel_size
        self.norm = RepDWConv(dim, kernel_size, num_conv_branches=0)
        self.mixer = RepDWConv(dim, kernel_size, num_conv_branches=1)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale_init_value))
        self.reparam_conv: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        return x + self.layer_scale * (self.mixer(x) - self.norm(x))

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.reparam_conv is not None:
            return
        k_mix, b_mix = self.mixer.fused_kernel_bias()
        k_norm, b_norm = self.norm.fused_kernel_bias()
        scale = self.layer_scale.reshape(-1)
        kernel = self.mixer.identity_kernel() + scale.reshape(-1, 1, 1, 1) * (k_mix - k_norm)
        bias = scale * (b_mix - b_norm)
        conv = nn.Conv2d(
            self.dim,
            self.dim,
            kernel_size=(1, self.kernel_size),
            padding=(0, self.kernel_size // 2),
            groups=self.dim,
            bias=True,
        ).to(device=kernel.device, dtype=kernel.dtype)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
        del self.norm, self.mixer, self.layer_scale
        self.reparam_conv = conv


class ConvFFN(nn.Module):
    """Depthwise token conv + BN, then a 1x1-conv MLP (GELU)."""

    def __init__(self, dim: int, hidden_dim: int, kernel_size: int = 11, drop: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Sequential()
        self.conv.add_module(
            "conv",
            nn.Conv2d(dim, dim, kernel_size=(1, kernel_size), padding=(0, kernel_size // 2), groups=dim, bias=False),
        )
        self.conv.add_module("bn", nn.BatchNorm2d(dim))
        self.fc1 = nn.Conv2d(dim, hidden_dim, kernel_size=1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_dim, dim, kernel_size=1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the conv+BN pair into one conv with bias (``conv.conv`` gains a bias)."""
        if not hasattr(self.conv, "bn"):
            return
        old = self.conv.conv
        kernel, bias = _fold_bn(old.weight, self.conv.bn)
        fused = nn.Conv2d(
            old.in_channels,
            old.out_channels,
            kernel_size=old.kernel_size,
            padding=old.padding,
            groups=old.groups,
            bias=True,
        ).to(device=kernel.device, dtype=kernel.dtype)
        fused.weight.copy_(kernel)
        fused.bias.copy_(bias)
        self.conv = nn.Sequential()
        self.conv.add_module("conv", fused)


class RepMixerBlock(nn.Module):
    """Metaformer block with RepMixer token mixing, on ``[B, L, D]`` token sequences."""

    def __init__(
        self,
        dim: int,
        kernel_size: int = 11,
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        layer_scale_init_value: float = 1e-5,
    ) -> None:
        super().__init__()
        self.token_mixer = RepMixer(dim, kernel_size=kernel_size, layer_scale_init_value=layer_scale_init_value)
        self.convffn = ConvFFN(dim, int(dim * mlp_ratio), kernel_size=kernel_size, drop=drop)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale_init_value))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, *_, **__) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"RepMixerBlock expects [batch, tokens, dim], got shape {tuple(x.shape)}")
        # [B, L, D] -> [B, D, 1, L]: tokens become the conv's width axis.
        x = x.transpose(1, 2).unsqueeze(2)
        x = self.token_mixer(x)
        x = x + self.layer_scale * self.convffn(x)
        return x.squeeze(2).transpose(1, 2)
