"""Reinforcement's augmentation draws equal torchvision's own RandomResizedCrop.get_params
and RandAugment given the same torch RNG state, and each entry is reproducible alone."""

import pytest
import torch
import torchvision.transforms.autoaugment as autoaugment
from hypothesis import given, settings
from hypothesis import strategies as st
from mobileclip_fastload._core import AUG_OP_NAMES
from mobileclip_fastload.reinforce.augmentation import draw_augmentations, entry_seed
from PIL import Image
from torchvision.transforms import RandAugment, RandomResizedCrop


def torchvision_entry(seed: int, width: int, height: int, aug_size: int, monkeypatch) -> list:
    """Seed torch's global RNG, then let torchvision itself draw: get_params, then RandAugment.forward
    on an aug_size crop (its _apply_op replaced by a recorder of the ops it was asked to apply)."""
    applied = []

    def record(img, op_name, magnitude, interpolation, fill):
        applied.append([AUG_OP_NAMES.index(op_name), magnitude])
        return img

    monkeypatch.setattr(autoaugment, "_apply_op", record)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        box = RandomResizedCrop.get_params(Image.new("RGB", (width, height)), [0.08, 1.0], [3 / 4, 4 / 3])
        RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31)(Image.new("RGB", (aug_size, aug_size)))
    return [list(box), applied]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**40),
    uid=st.text(min_size=1, max_size=12),
    width=st.integers(1, 3000),
    height=st.integers(1, 3000),
    aug_size=st.sampled_from([224, 256, 32]),
)
def test_draws_equal_torchvision(seed, uid, width, height, aug_size):
    J = 3
    ours = draw_augmentations(seed, uid, J, width, height, aug_size)
    with pytest.MonkeyPatch.context() as mp:  # hypothesis: no function-scoped fixture
        theirs = [torchvision_entry(entry_seed(seed, uid, j), width, height, aug_size, mp) for j in range(J)]
    assert ours == theirs
    for (i, j, h, w), ops in ours:
        assert i >= 0 and j >= 0 and h > 0 and w > 0 and i + h <= height and j + w <= width
        assert len(ops) == 2


def test_entries_are_reproducible_alone_and_distinct():
    all_at_once = draw_augmentations(7, "uid-1", 10, 640, 480)
    assert [draw_augmentations(7, "uid-1", j + 1, 640, 480)[j] for j in range(10)] == all_at_once
    assert draw_augmentations(7, "uid-2", 10, 640, 480) != all_at_once
    assert draw_augmentations(8, "uid-1", 10, 640, 480) != all_at_once
    assert len({str(e) for e in all_at_once}) == 10
    assert len({entry_seed(7, "uid-1", j) for j in range(1000)}) == 1000
