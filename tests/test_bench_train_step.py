"""The training bench's accounting and run order, on the CPU (its numbers come from a GPU run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benches"))
from bench_train_step import CUDA_RUNS, PinnedBatches, kernel_shares, parse_runs
from mobileclip_fastload_train.data import random_reinforced_source


def _event(i: int, name: str, start: int, end: int, device: DeviceType) -> FunctionEvent:
    return FunctionEvent(id=i, name=name, thread=0, start_us=start, end_us=end, device_type=device)


def test_kernel_shares_count_each_kernel_once():
    """A profile holds each aten op (host, carrying its kernels' device time) and each kernel:
    only the kernels are counted, by their own duration."""
    events = [
        _event(0, "aten::convolution", 0, 50, DeviceType.CPU),
        _event(1, "cudnn_conv_kernel", 10, 40, DeviceType.CUDA),  # 30 us
        _event(2, "aten::add_", 50, 60, DeviceType.CPU),
        _event(3, "elementwise_kernel", 60, 70, DeviceType.CUDA),  # 10 us
        _event(4, "cudnn_conv_kernel", 70, 100, DeviceType.CUDA),  # 30 us
    ]
    top, count = kernel_shares(events, cuda=True)
    assert count == 3
    assert top == [("cudnn_conv_kernel", pytest.approx(60 / 70)), ("elementwise_kernel", pytest.approx(10 / 70))]


def test_kernel_shares_on_the_cpu_are_aten_self_times():
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(64, 64)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        (x @ x).relu().sum()
    top, count = kernel_shares(prof.events(), cuda=False)
    assert count >= 3 and all(name.startswith("aten::") for name, _ in top)
    assert sum(share for _, share in top) == pytest.approx(1.0) or len(top) == 5


def test_runs_follow_the_targets_and_filter_by_model_and_variant():
    runs = parse_runs(CUDA_RUNS, None, None)
    assert runs[:4] == [("S0", "channels_last"), ("S0", "compiled"), ("S0", "cudagraphs"), ("vit", None)]
    assert ("S2", "channels_last") in runs and ("B", "channels_last") in runs
    assert parse_runs(CUDA_RUNS, "S0,e2e", "compiled") == [("S0", "compiled"), ("e2e", None)]
    with pytest.raises(SystemExit, match="MODEL:VARIANT"):
        parse_runs("S0:fast", None, None)


def test_the_in_memory_feed_repeats_the_same_batches():
    source = random_reinforced_source(16, 4, 8, num_augs=1, num_syn=1)
    pinned = PinnedBatches(source, 3, pin=False)
    first, again = list(pinned), list(pinned)
    assert len(first) == 3 and all(a is b for a, b in zip(first, again))
    assert set(first[0]) >= {"images", "text", "syn_text"}
