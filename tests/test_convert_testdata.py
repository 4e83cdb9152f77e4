"""The test-data generator draws augmentation parameters exactly as torchvision does."""

import torch
import torchvision.transforms.autoaugment as autoaugment
from mobileclip_fastload._core import AUG_OP_NAMES
from mobileclip_fastload.testing.datacompdr import draw_param_aug_entries
from PIL import Image
from torchvision.transforms import RandAugment, RandomResizedCrop


def test_entries_equal_torchvision_draws(monkeypatch):
    width, height, seed = 97, 61, 1234
    entries = draw_param_aug_entries(width, height, 5, seed)

    applied = []

    def record(img, op_name, magnitude, interpolation, fill):
        applied.append([AUG_OP_NAMES.index(op_name), magnitude])
        return img

    monkeypatch.setattr(autoaugment, "_apply_op", record)
    ra = RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31)
    teacher_crop = Image.new("RGB", (224, 224))
    reference = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(5):
            box = RandomResizedCrop.get_params(Image.new("RGB", (width, height)), [0.08, 1.0], [3 / 4, 4 / 3])
            applied.clear()
            ra(teacher_crop)
            reference.append([list(box), [list(a) for a in applied]])
    assert entries == reference
    assert all(i >= 0 and j >= 0 and i + h <= height and j + w <= width for (i, j, h, w), _ in entries)
