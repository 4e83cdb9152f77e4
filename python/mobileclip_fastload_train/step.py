"""How the training step runs fast: memory layout, kernel selection, regional compilation,
gradient checkpointing. The loop (``mobileclip_fastload_train.train``) computes the same loss either way;
this module only decides *how* the model's kernels run.

* ``channels_last`` for the image tower (MCi's depthwise convolutions and batch norms get
  cuDNN's NHWC kernels instead of PyTorch's native ``conv_depthwise2d`` fallback in bf16).
  Not needed for the text towers: MCt lays its tokens out as ``[B, D, 1, L]`` by transposing
  ``[B, L, D]``, which is already channels-last in memory, and its conv weights
  (``[D, 1, 1, k]`` depthwise, ``[O, I, 1, 1]`` pointwise) hold the same memory in both
  formats; open_clip's text transformer has no convolution. The text tower's convs are still given
  channels-last *strides* (always: nothing moves) so that parameter and gradient strides
  agree, which DDP's gradient bucket views need to avoid a copy.
  Default on CUDA only: on the CPU, oneDNN's strided 1x1 convolution backward with an NHWC
  input of fewer than 16 channels (MCi's stem) writes past its workspace (oneDNN issue 6035,
  heap corruption seen as ``double free or corruption``), see ``tests/test_training_fast_step.py``.
* ``cudnn.benchmark`` (shapes are static with ``drop_last``).
* regional ``torch.compile``: each block is compiled on its own (``Module.compile``, so state
  dict keys are unchanged); identical blocks share one compiled graph, which bounds compile
  time by the number of distinct block shapes instead of the model's depth.
* gradient checkpointing of the blocks, for batches that would not fit otherwise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)

COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "reduce-overhead")
REGION_CONTAINERS = ("blocks", "resblocks")  # timm (FastViT stages, ViT) and open_clip transformer block lists


@dataclass(frozen=True)
class FastPath:
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"  # "reduce-overhead" adds CUDA graphs to every compiled region
    compile_backend: str = "inductor"  # tests use "aot_eager" (tracing + autograd without code generation)
    grad_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")

    @classmethod
    def default_for(cls, device: torch.device, **overrides) -> FastPath:
        """The fast defaults for ``device``; ``None`` overrides keep the default."""
        values = {"channels_last": device.type == "cuda"}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def uses_cuda_graphs(self) -> bool:
        return self.compile and self.compile_mode == "reduce-overhead"


def configure_backends(device: torch.device) -> None:
    """cuDNN autotuning: every step has the same shapes, so the one-off search pays."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def image_memory_format(fast: FastPath) -> torch.memory_format:
    return torch.channels_last if fast.channels_last else torch.contiguous_format


def compile_regions(model: nn.Module, mode: str = "default", backend: str = "inductor") -> list[str]:
    """``Module.compile`` every block of ``model`` (in place) and return their names.

    Regions: every child of a ``blocks`` / ``resblocks`` container (FastViT stage blocks,
    ViT blocks, open_clip text blocks), every layer of MCt, and FastViT's stem, stage
    downsamplings, positional encodings and final conv. What is left in eager mode is glue
    (embeddings, pooling, projections, the loss)."""
    from timm.models.fastvit import FastVit

    from mobileclip_fastload_train.models.mct import MCt

    regions: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(module, (nn.Sequential, nn.ModuleList)) and leaf in REGION_CONTAINERS:
            regions += [(f"{name}.{i}", block) for i, block in enumerate(module)]
        elif isinstance(module, MCt):
            regions += [(f"{name}.transformer.{i}", layer) for i, layer in enumerate(module.transformer)]
        elif isinstance(module, FastVit):
            regions.append((f"{name}.stem", module.stem))
            for i, stage in enumerate(module.stages):
                for part in ("downsample", "pos_emb"):
                    sub = getattr(stage, part)
                    if not isinstance(sub, nn.Identity):
                        regions.append((f"{name}.stages.{i}.{part}", sub))
            regions.append((f"{name}.final_conv", module.final_conv))
    options = {"mode": None if mode == "default" else mode, "backend": backend, "dynamic": False}
    if backend != "inductor":
        options.pop("mode")
    # Every block of a kind is a cache entry of the same forward code: let all of them in.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 256)
    torch._dynamo.config.accumulated_cache_size_limit = max(torch._dynamo.config.accumulated_cache_size_limit, 4096)
    for _, region in regions:
        region.compile(**options)
    return [n for n, _ in regions]


def set_grad_checkpointing(model: nn.Module, enable: bool = True) -> list[str]:
    """Switch on activation checkpointing in every tower that supports it; returns their names."""
    done = []
    for name, module in model.named_modules():
        if module is not model and hasattr(module, "set_grad_checkpointing"):
            # The outermost supporting module of a tower handles its sub-modules itself.
            if any(name.startswith(d + ".") for d in done):
                continue
            module.set_grad_checkpointing(enable)
            done.append(name)
    return done


def prepare_model(model: nn.Module, device: torch.device, fast: FastPath) -> nn.Module:
    """Move ``model`` to ``device`` and apply ``fast`` (in place); returns the model."""
    configure_backends(device)
    if fast.channels_last and device.type == "cpu":
        log.warning(
            "channels_last on the CPU: oneDNN's strided 1x1 convolution backward with fewer than 16 "
            "NHWC input channels corrupts memory (oneDNN issue 6035); prefer it on CUDA only"
        )
    model.to(device)
    visual, text = getattr(model, "visual", None), getattr(model, "text", None)
    if fast.channels_last and visual is not None:
        visual.to(memory_format=torch.channels_last)
    for conv in (m for m in (text.modules() if text is not None else ()) if isinstance(m, nn.Conv2d)):
        # Same memory, other strides on the size-1 dims: MCt's conv weight gradients come back with
        # channels-last strides (its activations are channels-last), and DDP's bucket views copy
        # gradients whose strides differ from their parameter's.
        conv.to(memory_format=torch.channels_last)
    if fast.grad_checkpointing:
        towers = set_grad_checkpointing(model)
        if not towers:
            raise ValueError("gradient checkpointing: no tower of this model supports it")
    if fast.compile:
        t0 = time.perf_counter()
        regions = compile_regions(model, fast.compile_mode, fast.compile_backend)
        log.info(
            "regional torch.compile: %d regions wrapped in %.1fs (code is generated at the first step)",
            len(regions),
            time.perf_counter() - t0,
        )
    return model
