"""MobileCLIP2: the six models (open_clip configs), their preprocessing, parameter counts,
training steps, reparameterisation (MCi3/MCi4 included) and Apple's / timm's checkpoints."""

import functools
import logging

import open_clip
import pytest
import timm
import torch
from mobileclip_fastload_train.models import create_model, list_models, reparameterize
from mobileclip_fastload_train.models.checkpoints import checkpoint_layout, load_open_clip_checkpoint, load_pretrained
from mobileclip_fastload_train.models.factory import PREPROCESS
from reparam_inputs import perturb_for_reparam
from torch import nn

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MOBILECLIP2 = (
    "MobileCLIP2-S0",
    "MobileCLIP2-S2",
    "MobileCLIP2-B",
    "MobileCLIP2-S3",
    "MobileCLIP2-S4",
    "MobileCLIP2-L-14",
)
# Apple's table (ml-mobileclip README / model cards), image and text towers in millions of parameters.
APPLE_PARAMS_M = {
    "MobileCLIP2-S0": (11.4, 63.4),
    "MobileCLIP2-S2": (35.7, 63.4),
    "MobileCLIP2-B": (86.3, 63.4),
    "MobileCLIP2-S3": (125.1, 123.6),
    "MobileCLIP2-S4": (321.6, 123.6),
    "MobileCLIP2-L-14": (304.3, 123.6),
}
HEAVY = {"MobileCLIP2-S2", "MobileCLIP2-B", "MobileCLIP2-S3", "MobileCLIP2-S4", "MobileCLIP2-L-14"}


def _params(names, heavy=HEAVY):
    return [pytest.param(n, marks=pytest.mark.heavy) if n in heavy else n for n in names]


def _tokens(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(batch, 77, dtype=torch.long)
    for i in range(batch):
        n = int(torch.randint(1, 70, (1,), generator=g))
        tokens[i, 0], tokens[i, n + 1] = 49406, 49407
        tokens[i, 1 : n + 1] = torch.randint(1, 49400, (n,), generator=g)
    return tokens


def _open_clip_model(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    logging.disable(logging.WARNING)  # "no pretrained weights loaded": the intent
    try:
        return open_clip.create_model(name, pretrained=None)
    finally:
        logging.disable(logging.NOTSET)


def _unfolded_branches(model: nn.Module) -> list[str]:
    keys = ("rbr_conv", "rbr_skip", "conv_kxk", "conv_scale", ".identity")
    return [n for n, _ in model.named_modules() if any(k in n for k in keys)]


def test_every_mobileclip2_model_is_listed_with_open_clips_config_and_released_normalisation():
    assert set(MOBILECLIP2) <= set(list_models()) and set(MOBILECLIP2) <= set(open_clip.list_models())
    assert {"MobileCLIP-S0", "MobileCLIP-S1", "MobileCLIP-S2", "MobileCLIP-B"} <= set(list_models())  # v1 stays
    for name in MOBILECLIP2:
        released = open_clip.get_pretrained_cfg(name, "dfndr2b")  # the released weights' preprocessing
        pre = PREPROCESS[name]
        assert pre.image_size == open_clip.get_model_config(name)["vision_cfg"]["image_size"], name
        assert (pre.mean, pre.std) == (tuple(released["mean"]), tuple(released["std"])), name
        assert pre.interpolation == "bicubic"  # the training replay (open_clip's training crop), not eval's
    assert PREPROCESS["MobileCLIP2-S0"].mean == (0.0, 0.0, 0.0)  # as v1; S3/S4/L-14: OpenAI's
    assert PREPROCESS["MobileCLIP2-S3"].mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))


@pytest.mark.parametrize("name", MOBILECLIP2)
def test_parameter_counts_equal_apples(name):
    """The train-time towers, counted on the meta device (no memory, no init), within 0.5% of Apple's
    table: Apple counts the MCi towers reparameterised (the next test; S2 train-time: 35.815M)."""
    model = create_model(name, device="meta")
    image_m, text_m = (sum(p.numel() for p in t.parameters()) / 1e6 for t in (model.visual, model.text))
    apple_image, apple_text = APPLE_PARAMS_M[name]
    assert abs(image_m - apple_image) / apple_image < 0.005, f"{name} image {image_m:.3f}M vs {apple_image}M"
    assert abs(text_m - apple_text) / apple_text < 0.005, f"{name} text {text_m:.3f}M vs {apple_text}M"


@pytest.mark.parametrize(
    "name",
    _params(
        ["MobileCLIP2-S0", "MobileCLIP2-S2", "MobileCLIP2-B", "MobileCLIP2-S3", "MobileCLIP2-S4"],
        heavy={"MobileCLIP2-S3", "MobileCLIP2-S4"},
    ),
)
def test_reparameterised_image_towers_have_apples_counts_to_the_decimal(name):
    """Apple's image counts are of the folded (deployed) towers: 11.358 / 35.703 / 86.349 / 125.074 /
    321.570M here. (L-14 is left out: 303.967M here, train-time or folded, against Apple's 304.3M.)"""
    folded = reparameterize(create_model(name).visual)
    assert round(sum(p.numel() for p in folded.parameters()) / 1e6, 1) == APPLE_PARAMS_M[name][0]


@pytest.mark.parametrize("name", _params(MOBILECLIP2))
def test_forward_and_backward_on_the_cpu(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    size = model.preprocess.image_size
    img, txt, scale = model(torch.rand(2, 3, size, size), _tokens(2))
    dim = open_clip.get_model_config(name)["embed_dim"]
    assert img.shape == (2, dim) and txt.shape == (2, dim)
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(2))
    (scale * img @ txt.T).logsumexp(dim=1).mean().backward()
    for tower in (model.visual, model.text):
        grads = [p.grad for p in tower.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert model.logit_scale.grad is not None


def _assert_reparameterised_equal(model: nn.Module, images: torch.Tensor, tokens: torch.Tensor, tol: float) -> None:
    model.eval()
    folded = reparameterize(model)
    with torch.no_grad():
        before = (model.visual(images), model.text(tokens))
        after = (folded.visual(images), folded.text(tokens))
    for b, a in zip(before, after):
        assert (b - a).abs().max().item() < tol * b.abs().max().item()
    assert not _unfolded_branches(folded)


@pytest.mark.parametrize("variant", ["fastvit_mci3", "fastvit_mci4"])
def test_reparameterize_folds_five_stage_mci3_mci4_towers(variant):
    """MCi3/MCi4's block types (scale-free stem, LayerNorm2d, two attention stages with RepCPE) at a
    CPU-sized width; the full-size towers are the slow test below."""
    from mobileclip_fastload_train.models.image_tower import ImageTower

    torch.manual_seed(0)
    trunk = timm.create_model(
        variant, pretrained=False, num_classes=32, layers=(1, 1, 1, 1, 1), embed_dims=(8, 16, 32, 64, 128)
    )
    model = create_model("tiny-S1")
    model.visual = ImageTower(trunk, 64)
    perturb_for_reparam(model)
    assert _unfolded_branches(model.visual)
    _assert_reparameterised_equal(model, torch.rand(2, 3, 64, 64), _tokens(2), 1e-4)


@pytest.mark.parametrize("name", _params(MOBILECLIP2, heavy=HEAVY - {"MobileCLIP2-S0"}))
def test_reparameterised_features_equal_train_time_features(name):
    torch.manual_seed(0)
    model = create_model(name)
    perturb_for_reparam(model)
    size = model.preprocess.image_size
    _assert_reparameterised_equal(model, torch.rand(1, 3, size, size), _tokens(2), 1e-4)


@functools.lru_cache(maxsize=1)
def _apple_s0() -> nn.Module:
    """A random-init open_clip MobileCLIP2-S0 with BN statistics that make reparameterisation matter."""
    oc = _open_clip_model("MobileCLIP2-S0", seed=7)
    perturb_for_reparam(oc.visual, seed=3)
    return oc.eval()


def _features(model, images, tokens):
    with torch.no_grad():
        return model.encode_image(images, normalize=True), model.encode_text(tokens, normalize=True)


@pytest.mark.slow
def test_apples_mobileclip2_checkpoint_loads_with_every_key_and_the_same_features(tmp_path):
    """Apple's mobileclip2_*.pt is an open_clip state dict in train-time form: it loads with no key
    left over, and our features equal open_clip's, before and after reparameterisation."""
    oc = _apple_s0()
    path = tmp_path / "mobileclip2_s0.pt"
    torch.save(oc.state_dict(), path)

    torch.manual_seed(0)
    ours = create_model("MobileCLIP2-S0").eval()
    assert load_pretrained(ours, path) == "open_clip"
    assert set(ours.state_dict()) == set(oc.state_dict())
    images, tokens = torch.rand(2, 3, 256, 256), _tokens(2)
    expected = _features(oc, images, tokens)
    for got, want in zip(_features(ours, images, tokens), expected):
        assert torch.equal(got, want)
    assert ours.logit_scale.item() == oc.logit_scale.item()
    folded = reparameterize(ours)
    assert not _unfolded_branches(folded)
    for got, want in zip(_features(folded, images, tokens), expected):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_open_clip_training_checkpoints_unwrap_to_the_same_state_dict(tmp_path):
    """open_clip's training checkpoints wrap the state dict as {"state_dict": {"module." + key: ...}}."""
    from mobileclip_fastload_train.models.checkpoints import read_checkpoint

    state = {
        "visual.trunk.stem.0.weight": torch.randn(3),
        "text.token_embedding.weight": torch.randn(2, 2),
        "logit_scale": torch.tensor(2.0),
    }
    path = tmp_path / "epoch_3.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    loaded = read_checkpoint(path)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v) for k, v in state.items())
    assert checkpoint_layout(loaded) == "open_clip"


def test_timms_rehosted_image_tower_loads_into_the_image_tower(tmp_path):
    """timm's fastvit_mci*.apple_mclip2_dfndr2b files: the timm model's keys, head = CLIP projection."""
    from safetensors.torch import save_file

    torch.manual_seed(5)
    tower = timm.create_model("fastvit_mci0", pretrained=False, num_classes=512).eval()
    perturb_for_reparam(tower, seed=4)
    path = tmp_path / "model.safetensors"
    save_file(tower.state_dict(), str(path))

    ours = create_model("MobileCLIP2-S0").eval()
    text_before = {k: v.clone() for k, v in ours.text.state_dict().items()}
    assert load_pretrained(ours, path) == "timm"
    images = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(ours.visual(images), tower(images))
    assert all(torch.equal(v, text_before[k]) for k, v in ours.text.state_dict().items())  # image tower only


def test_checkpoints_that_do_not_fit_are_refused_with_the_reason(tmp_path):
    oc = _apple_s0()
    ours = create_model("MobileCLIP2-S0")
    folded = reparameterize(oc).state_dict()
    with pytest.raises(ValueError, match="reparameterised"):
        load_open_clip_checkpoint(ours, folded)
    partial = {k: v for k, v in oc.state_dict().items() if not k.startswith("text.transformer.resblocks.11.")}
    with pytest.raises(ValueError, match=r"missing keys \['text.transformer.resblocks.11"):
        load_open_clip_checkpoint(ours, partial)
    with pytest.raises(ValueError, match="does not fit"):
        load_open_clip_checkpoint(create_model("tiny-S1"), oc.state_dict())
    with pytest.raises(ValueError, match="unknown checkpoint layout"):
        checkpoint_layout({"foo.weight": torch.zeros(1)})


def test_training_starts_from_pretrained_weights(tmp_path):
    """``mobileclip_fastload_train.train --pretrained``: with lr 0 the run's final parameters are the file's
    (BatchNorm statistics move in the training step's forward: buffers are not compared)."""
    from mobileclip_fastload_train.train import main

    torch.manual_seed(5)
    model = create_model("tiny-S1")
    path = tmp_path / "start.pt"
    torch.save(model.state_dict(), path)
    start = dict(model.named_parameters())
    out = tmp_path / "run"
    main(
        [
            "--fake-data",
            "8",
            "--model",
            "tiny-S1",
            "--pretrained",
            str(path),
            "--batch-size",
            "8",
            "--steps",
            "1",
            "--lr",
            "0",
            "--wd",
            "0",
            "--output",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    trained = torch.load(out / "checkpoints" / "latest.pt", weights_only=True)["model"]
    assert all(torch.equal(trained[k], v) for k, v in start.items())
    with pytest.raises(ValueError, match="does not fit"):
        main(
            [
                "--fake-data",
                "8",
                "--model",
                "tiny-S0",
                "--pretrained",
                str(path),
                "--output",
                str(tmp_path / "x"),
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
