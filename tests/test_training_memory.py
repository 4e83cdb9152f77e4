"""The step-memory estimate the GPU check uses to choose a batch per model: saved activations
counted exactly (checked against an analytic count), extrapolated linearly in the batch
(checked against a direct count at a larger batch), plus the parameters' static bytes."""

from __future__ import annotations

import pytest
import torch
from mobileclip_fastload_train.memory import (
    HEADROOM,
    STATIC_BYTES_PER_PARAM,
    StepMemory,
    measure_step_memory,
    saved_activation_bytes,
)
from mobileclip_fastload_train.models import create_model
from torch import nn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_saved_activations_match_an_analytic_count():
    """Linear saves its input, ReLU its output (which the next Linear saves too: counted once);
    weights are parameters, not activations."""
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
    for batch in (1, 5):
        x = torch.randn(batch, 16)
        measured = saved_activation_bytes(lambda x=x: mlp(x).sum(), list(mlp.parameters()))
        assert measured == batch * (16 + 32) * 4


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_estimate_extrapolates_to_a_larger_batch(precision):
    torch.manual_seed(0)
    model = create_model("tiny-S0", image_size=32, text_width=32, embed_dim=32)
    estimate = measure_step_memory(
        model, 32, captions_per_image=2, precision=precision, context_length=model.preprocess.context_length
    )
    params = sum(p.numel() for p in model.parameters())
    assert estimate.static_bytes == STATIC_BYTES_PER_PARAM * params
    assert estimate.per_sample_bytes > 0

    batch = 6
    images, texts = torch.rand(batch, 3, 32, 32), torch.randint(1, 1000, (2 * batch, model.preprocess.context_length))

    def forward():
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
        with autocast:
            img, txt, _ = model(images, texts)
        return img.float().sum() + txt.float().sum()

    direct = saved_activation_bytes(forward, list(model.parameters()))
    extrapolated = estimate.at(batch) - estimate.static_bytes
    assert abs(extrapolated - direct) <= 0.05 * direct, (extrapolated, direct)


def test_the_largest_batch_that_fits_leaves_headroom():
    memory = StepMemory(static_bytes=10 * 2**30, fixed_activation_bytes=2**30, per_sample_bytes=200 * 2**20)
    assert memory.at(256) == 11 * 2**30 + 256 * 200 * 2**20
    assert memory.largest_batch(80 * 2**30, 256) == 256  # 61 GiB x 1.25 fits
    chosen = memory.largest_batch(60 * 2**30, 256)
    assert chosen % 32 == 0 and HEADROOM * memory.at(chosen) <= 60 * 2**30 < HEADROOM * memory.at(chosen + 32)
    assert memory.largest_batch(12 * 2**30, 256) == 0
