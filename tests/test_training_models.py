"""MobileCLIP models: shapes, parameter counts, Apple-compatible MCt layout, reparameterisation."""

import functools

import pytest
import torch
from mobileclip_fastload_train.models import MCt, MCtConfig, create_model, reparameterize
from mobileclip_fastload_train.models.text_repmixer import RepMixer, RepMixerBlock
from reparam_inputs import perturb_for_reparam
from torch import nn

SOT, EOT = 49406, 49407


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tokens(batch: int, vocab: int = 49400, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(batch, 77, dtype=torch.long)
    for i in range(batch):
        n = int(torch.randint(1, 70, (1,), generator=g))
        tokens[i, 0] = SOT
        tokens[i, 1 : n + 1] = torch.randint(1, vocab, (n,), generator=g)
        tokens[i, n + 1] = EOT
    return tokens


@functools.lru_cache(maxsize=2)
def _cached_model(name: str) -> nn.Module:
    return create_model(name)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Published counts (MobileCLIP paper, table 3/appendix) include the projection
# to the 512-d embedding (MCi: pooled 1024->512 linear; text: 512x512 projection)
# and exclude the logit scale.
@pytest.mark.parametrize(
    ("model_name", "tower", "published_m"),
    [
        ("MobileCLIP-S0", "visual", 11.4),  # MCi0
        ("MobileCLIP-S0", "text", 42.4),  # MCt
        ("MobileCLIP-S1", "visual", 21.5),  # MCi1
        ("MobileCLIP-S1", "text", 63.4),  # base 12-layer text transformer
        ("MobileCLIP-S2", "visual", 35.7),  # MCi2
    ],
)
@pytest.mark.slow
def test_full_size_parameter_counts_match_published(model_name, tower, published_m):
    model = _cached_model(model_name)
    count = _count(getattr(model, tower)) / 1e6
    assert abs(count - published_m) / published_m < 0.01, f"{model_name}.{tower}: {count:.3f}M vs {published_m}M"


@pytest.mark.slow
def test_full_size_s0_forward_shapes_and_normalisation():
    model = create_model("MobileCLIP-S0").eval()
    images = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        img, txt, scale = model(images, _tokens(2))
    assert img.shape == (2, 512) and txt.shape == (2, 512)
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(2))
    assert scale.item() == pytest.approx(1 / 0.07, rel=1e-5)


@pytest.mark.slow
def test_mct_state_dict_follows_apple_layout():
    sd = MCt().state_dict()
    expected = {
        "embedding_layer.weight": (49408, 512),
        "positional_embedding.pos_embed.pos_embed": (1, 1, 77, 512),
        "transformer.0.token_mixer.norm.rbr_skip.running_var": (512,),
        "transformer.0.token_mixer.mixer.rbr_skip.weight": (512,),
        "transformer.0.token_mixer.mixer.rbr_conv.0.conv.weight": (512, 1, 1, 11),
        "transformer.0.token_mixer.mixer.rbr_conv.0.bn.bias": (512,),
        "transformer.0.token_mixer.layer_scale": (512, 1, 1),
        "transformer.0.convffn.conv.conv.weight": (512, 1, 1, 11),
        "transformer.0.convffn.conv.bn.weight": (512,),
        "transformer.0.convffn.fc1.weight": (2048, 512, 1, 1),
        "transformer.0.convffn.fc2.weight": (512, 2048, 1, 1),
        "transformer.0.layer_scale": (512, 1, 1),
        "transformer.1.pre_norm_mha.0.weight": (512,),
        "transformer.1.pre_norm_mha.1.qkv_proj.weight": (1536, 512),
        "transformer.1.pre_norm_mha.1.out_proj.bias": (512,),
        "transformer.4.pre_norm_ffn.1.weight": (2048, 512),
        "transformer.4.pre_norm_ffn.4.weight": (512, 2048),
        "transformer.5.token_mixer.mixer.rbr_conv.0.conv.weight": (512, 1, 1, 11),
        "final_layer_norm.weight": (512,),
        "projection_layer": (512, 512),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert "transformer.6.layer_scale" not in sd  # RepMixer, 4 transformer layers, RepMixer
    assert not any("rbr_scale" in k for k in sd)  # Apple's (1, k) MobileOneBlock builds no scale branch


def test_mct_eot_pooling_reads_the_eot_position():
    torch.manual_seed(0)
    model = MCt(MCtConfig(dim=32, n_transformer_layers=1, n_heads=2, projection_dim=16, vocab_size=49408)).eval()
    tokens = _tokens(3)
    with torch.no_grad():
        per_token = model.forward_tokens(tokens)
        pooled = model(tokens)
    eot_pos = (tokens == EOT).int().argmax(dim=1)
    torch.testing.assert_close(pooled, per_token[torch.arange(3), eot_pos] @ model.projection_layer)


def test_mct_rejects_wrong_context_length():
    model = MCt(MCtConfig(dim=32, n_transformer_layers=1, n_heads=2, projection_dim=16))
    with pytest.raises(ValueError, match="77 tokens"):
        model(torch.zeros(2, 50, dtype=torch.long))


def test_text_repmixer_train_forward_is_skip_plus_branches():
    """The unfolded forward is x + ls * (BN(x) + BN(conv(x)) - BN'(x)): check against a direct formula."""
    torch.manual_seed(0)
    mixer = RepMixer(8, kernel_size=5)
    perturb_for_reparam(mixer)
    mixer.eval()
    x = torch.randn(2, 8, 1, 13)

    def bn(m, t):
        return (t - m.running_mean[:, None, None]) / (m.running_var[:, None, None] + m.eps).sqrt() * m.weight[
            :, None, None
        ] + m.bias[:, None, None]

    branch = mixer.mixer.rbr_conv[0]
    conv = torch.nn.functional.conv1d(x.squeeze(2), branch.conv.weight.squeeze(2), padding=2, groups=8).unsqueeze(2)
    expected = x + mixer.layer_scale * (bn(mixer.mixer.rbr_skip, x) + bn(branch.bn, conv) - bn(mixer.norm.rbr_skip, x))
    with torch.no_grad():
        torch.testing.assert_close(mixer(x), expected)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-S0", "tiny-S1", "MobileCLIP-S0"])
def test_reparameterize_preserves_outputs(name):
    torch.manual_seed(0)
    model = create_model(name)
    perturb_for_reparam(model)
    model.eval()
    size = model.preprocess.image_size
    images = torch.rand(2, 3, size, size)
    tokens = _tokens(2)
    folded = reparameterize(model)
    with torch.no_grad():
        before = (model.visual(images), model.text(tokens))
        after = (folded.visual(images), folded.text(tokens))
    for b, a in zip(before, after):
        assert (b - a).abs().max().item() < 1e-5
    # Folding really happened: no train-time branch or RepMixer BatchNorm is left.
    names = [n for n, _ in folded.named_modules()]
    assert not any(k in n for n in names for k in ("rbr_conv", "rbr_skip", "conv_kxk", "conv_scale", ".identity"))
    if isinstance(folded.text, MCt):
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.text.modules())
    # The original model is untouched (reparameterize copies by default).
    assert any("rbr_conv" in n for n, _ in model.named_modules()) == isinstance(model.text, MCt)


def test_reparameterize_test_is_sensitive_to_the_mixer_branches():
    """Guard for the test above: with these perturbations the RepMixer branches change the output a lot."""
    torch.manual_seed(0)
    model = create_model("tiny-S0")
    perturb_for_reparam(model)
    model.eval()
    tokens = _tokens(2)
    with torch.no_grad():
        ref = model.text(tokens)
        for m in model.text.modules():
            if isinstance(m, RepMixerBlock):
                m.token_mixer.layer_scale.zero_()
        assert (model.text(tokens) - ref).abs().max().item() > 1e-2


@pytest.mark.slow
def test_apple_checkpoint_text_keys_load_into_mct():
    from mobileclip_fastload_train.models.apple_checkpoint import load_apple_checkpoint

    src = create_model("MobileCLIP-S0")
    dst = create_model("MobileCLIP-S0")
    # Text side only: the image side is timm's remap of Apple's MCi naming, which needs the real file.
    ckpt = {f"text_encoder.{k}": v for k, v in src.text.state_dict().items()}
    ckpt["logit_scale"] = torch.tensor(4.2)
    load_apple_checkpoint(dst, ckpt, image=False)
    for k, v in src.text.state_dict().items():
        assert torch.equal(dst.text.state_dict()[k], v), k
    assert dst.logit_scale.item() == pytest.approx(4.2)
