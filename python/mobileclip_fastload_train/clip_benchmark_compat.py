"""One fix for clip_benchmark 1.6.2 under NumPy >= 2.4 (LAION-AI/CLIP_benchmark#147, open).

Its ``zeroshot_classification.accuracy`` ends in ``float(<1-element 1-D array>)``, which NumPy 2.4
made an error, so every zero-shot classification fails. ``accuracy()`` below is clip_benchmark's own
when that works; otherwise the same computation with the scalar taken by ``.item()``, installed
into clip_benchmark's module so its runner uses it too. Nothing changes once upstream is fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Accuracy = Callable[..., list]


def _accuracy_fixed(output: torch.Tensor, target: torch.Tensor, topk: Sequence[int] = (1,)) -> list[float]:
    # clip_benchmark's accuracy, line for line, but for the scalar conversion
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    n = len(target)
    return [correct[:k].reshape(-1).float().sum().item() / n for k in topk]


def _works(accuracy: Accuracy) -> bool:
    try:
        return accuracy(torch.tensor([[0.0, 1.0]]), torch.tensor([1]), topk=(1,)) == [1.0]
    except TypeError:
        return False


def accuracy() -> Accuracy:
    """clip_benchmark's top-k accuracy (fixed in place when it is broken)."""
    from clip_benchmark.metrics import zeroshot_classification

    if not _works(zeroshot_classification.accuracy):
        zeroshot_classification.accuracy = _accuracy_fixed  # the runner's evaluate() looks it up here
    return zeroshot_classification.accuracy
