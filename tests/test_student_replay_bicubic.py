"""Students train on Apple's pixels: the training replay is bicubic at the student's own size.

Apple's DR pipeline copies open_clip's training RandomResizedCrop (BICUBIC) into the
replay, for S0-S2 at 256 px and B at 224 px (docs/REPLAY.md). Here the
loader, configured as ``mobileclip_fastload_train.train`` configures it for each model, and with
its own defaults, is compared bit for bit with Pillow + torchvision, bicubic.
"""

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from mobileclip_fastload import FastReinforcedLoader, Store, _core
from mobileclip_fastload.loader import TRAINING_INTERPOLATION
from mobileclip_fastload.reference import parse_aug, reference_replay
from mobileclip_fastload.testing.synthetic_store import make_store
from mobileclip_fastload_train.data import open_store_loader
from mobileclip_fastload_train.models.clip import Preprocess
from mobileclip_fastload_train.models.factory import PREPROCESS
from PIL import Image

N = 10


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("bicubic") / "store", n=N, J=3, S=2, K=2, D=4, seed=7)


def test_every_model_trains_on_the_bicubic_replay_at_its_own_size():
    assert {name: (p.image_size, p.interpolation) for name, p in PREPROCESS.items()} == {
        "MobileCLIP-S0": (256, "bicubic"),
        "MobileCLIP-S1": (256, "bicubic"),
        "MobileCLIP-S2": (256, "bicubic"),
        "MobileCLIP-B": (224, "bicubic"),
        "MobileCLIP2-S0": (256, "bicubic"),
        "MobileCLIP2-S2": (256, "bicubic"),
        "MobileCLIP2-B": (224, "bicubic"),
        "MobileCLIP2-S3": (256, "bicubic"),
        "MobileCLIP2-S4": (256, "bicubic"),
        "MobileCLIP2-L-14": (224, "bicubic"),
    }
    assert Preprocess(image_size=64).interpolation == TRAINING_INTERPOLATION == "bicubic"


def _reference_float(ref_u8: np.ndarray, pre: Preprocess) -> torch.Tensor:
    return TF.normalize(TF.to_tensor(Image.fromarray(ref_u8)), pre.mean, pre.std)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["MobileCLIP-S0", "MobileCLIP-B"])  # the two student sizes, 256 and 224
def test_the_training_loader_replays_bit_for_bit_like_pillow_bicubic(store_path, model):
    pre = PREPROCESS[model]
    store = Store(store_path)
    # Exactly how mobileclip_fastload_train.train opens the store for this model ...
    trained = open_store_loader(
        store_path, 4, pre.image_size, pre.interpolation, pre.mean, pre.std, "both", 0.5, seed=5, num_threads=2
    )
    # ... and the loader with nothing but the size given: the same pixels.
    plain = FastReinforcedLoader(
        store_path, 4, image_size=pre.image_size, image_dtype="uint8", num_threads=2, seed=5, drop_last=True
    )
    seen, differs_from_bilinear = 0, 0
    for fb, ub in zip(trained, plain):
        assert torch.equal(fb.index, ub.index) and torch.equal(fb.aug_index, ub.aug_index)
        for r in range(len(fb)):
            i, j = int(fb.index[r]), int(fb.aug_index[r])
            image, aug = bytes(store.image(i)), store.aug(i)[j]
            ref = reference_replay(image, aug, pre.image_size, "bicubic")
            assert np.array_equal(ub.images[r].permute(1, 2, 0).numpy(), ref), f"{model}: sample {i} aug {j}"
            assert torch.equal(fb.images[r], _reference_float(ref, pre)), f"{model}: sample {i} aug {j}"
            differs_from_bilinear += not np.array_equal(ref, reference_replay(image, aug, pre.image_size, "bilinear"))
            seen += 1
    assert seen == (N // 4) * 4
    # The check can tell the two resamplings apart on these images.
    assert differs_from_bilinear == seen


def test_the_replay_function_defaults_to_bicubic_too(store_path):
    store = Store(store_path)
    for i in range(3):
        aug = parse_aug(store.aug(i)[0])
        if aug.is_null:
            continue
        image = bytes(store.image(i))
        ours = _core.replay_augmentation(
            image, aug.top, aug.left, aug.height, aug.width, list(aug.ops), 96, hflip=aug.hflip
        )
        assert np.array_equal(ours, reference_replay(image, aug, 96, "bicubic"))
        assert np.array_equal(reference_replay(image, aug, 96), reference_replay(image, aug, 96, "bicubic"))
