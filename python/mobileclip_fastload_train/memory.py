"""How much device memory a training step of a model takes at a batch size, estimated
before running it: measured at two small batches (on the CPU or the device) and extrapolated.

    static      parameters, their gradients and AdamW's two moments: 4 float32 copies;
    activations what autograd saves for backward (through ``saved_tensors_hooks``, each storage
                once, parameters excluded), measured at batches 2 and 4 under the same autocast:
                a fixed part (e.g. autocast's bf16 weight copies) plus a part per sample.

The step's peak also holds transient buffers (gradients of activations in flight, cuDNN
workspaces, the caching allocator's fragmentation); ``HEADROOM`` covers them when a batch is
chosen to fit a device (``largest_batch``). The estimate is what a GPU run must check
(``benches/gpu_check.py`` states estimate and measured peak side by side).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

#: Bytes per parameter held by a step: float32 weight, gradient and AdamW's two moments.
STATIC_BYTES_PER_PARAM = 4 * 4
#: Measured peak over this estimate that a chosen batch leaves room for.
HEADROOM = 1.25
#: The batches measured (batch norm in training mode needs more than one value per channel).
MEASURED_BATCHES = (2, 4)


@dataclass(frozen=True)
class StepMemory:
    static_bytes: int
    fixed_activation_bytes: int
    per_sample_bytes: int

    def at(self, batch: int) -> int:
        """Estimated bytes of one optimiser step at ``batch`` samples."""
        return self.static_bytes + self.fixed_activation_bytes + batch * self.per_sample_bytes

    def largest_batch(self, budget_bytes: int, wanted: int, multiple: int = 32) -> int:
        """``wanted`` if ``HEADROOM`` times its estimate fits ``budget_bytes``, else the largest
        multiple of ``multiple`` below it that fits (0 if none)."""
        if HEADROOM * self.at(wanted) <= budget_bytes:
            return wanted
        free = budget_bytes / HEADROOM - self.static_bytes - self.fixed_activation_bytes
        fits = int(free // max(1, self.per_sample_bytes))
        return max(0, min(wanted, fits // multiple * multiple))


def saved_activation_bytes(forward: Callable[[], torch.Tensor], exclude: list[torch.Tensor]) -> int:
    """Bytes autograd saves for backward while ``forward()`` runs (each storage once; the
    storages of ``exclude``, e.g. the parameters, not counted)."""
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in excluded:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    del out
    return sum(seen.values())


def measure_step_memory(
    model: nn.Module,
    image_size: int,
    captions_per_image: int = 2,
    precision: str = "bf16",
    context_length: int = 77,
    device: torch.device | None = None,
) -> StepMemory:
    """``model(images, texts)`` (a ``mobileclip_fastload_train.models`` CLIP model, or open_clip's) measured at
    ``MEASURED_BATCHES`` on the device its parameters are on (the CPU in tests: slow for full-size
    models on a few cores, a fraction of a second on a GPU); ``captions_per_image`` caption rows
    per image go through the text tower (2: the real and the synthetic caption, as
    ``mobileclip_fastload_train.train`` does)."""
    params = list(model.parameters())
    device = device or params[0].device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    was_training = model.training
    model.train()

    def forward(batch: int) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            generator = torch.Generator().manual_seed(batch)
            images = torch.rand(batch, 3, image_size, image_size, generator=generator).to(device)
            texts = torch.randint(1, 1000, (captions_per_image * batch, context_length), generator=generator)
            texts = texts.to(device)
            with autocast:
                out = model(images, texts)
            features = out.values() if isinstance(out, dict) else out
            return sum(f.float().sum() for f in features if isinstance(f, torch.Tensor) and f.ndim > 0)

        return run

    small, large = MEASURED_BATCHES
    try:
        at_small, at_large = (saved_activation_bytes(forward(b), params) for b in MEASURED_BATCHES)
    finally:
        model.train(was_training)
    per_sample = max(0, (at_large - at_small) // (large - small))
    return StepMemory(
        static_bytes=STATIC_BYTES_PER_PARAM * sum(p.numel() for p in params if p.requires_grad),
        fixed_activation_bytes=max(0, at_small - small * per_sample),
        per_sample_bytes=per_sample,
    )
