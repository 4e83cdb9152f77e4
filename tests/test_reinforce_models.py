"""Building reinforcement's open_clip models right, without downloading anything: the activation a
pretrained tag was trained with (open_clip's pretrained config says it; open_clip 3.3 builds ViT-L-14
with GELU and only warns), a known mismatch refused, and the random-init models built with it; the
CoCa preprocessing that now runs on the replay threads equals the built model's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mobileclip_fastload.reinforce.open_clip_models import (
    OpenClipSpec,
    build,
    create_kwargs,
    preprocess_cfg_of,
    quick_gelu_of,
)
from mobileclip_fastload.testing.tiny_models import tiny_specs


@pytest.mark.parametrize(
    ("name", "tag", "quick"),
    [
        ("ViT-L-14", "openai", True),  # DataCompDR's first teacher
        ("ViT-L-14", "dfn2b", True),  # MobileCLIP2's DFN teacher
        ("ViT-L-14", "datacomp_xl_s13b_b90k", False),  # DataCompDR's second teacher
        ("coca_ViT-L-14", "mscoco_finetuned_laion2B-s13B-b90k", False),
        ("ViT-L-14-quickgelu", "dfn2b", True),
    ],
)
def test_a_pretrained_tag_gets_the_activation_it_was_trained_with(name, tag, quick):
    spec = OpenClipSpec(name, tag)
    assert quick_gelu_of(spec) is quick
    assert create_kwargs(spec) == {"pretrained": tag, "force_quick_gelu": quick}  # what build() passes open_clip


def test_a_known_activation_mismatch_is_refused():
    with pytest.raises(ValueError, match="trained with QuickGELU"):
        quick_gelu_of(OpenClipSpec("ViT-L-14", "openai", quick_gelu=False))
    with pytest.raises(ValueError, match="trained with GELU"):  # a -quickgelu config, weights trained with GELU
        quick_gelu_of(OpenClipSpec("roberta-ViT-B-32", "laion2b_s12b_b32k"))
    assert quick_gelu_of(OpenClipSpec("ViT-L-14", "openai", quick_gelu=True)) is True  # agreeing is fine


def activations(model) -> set[str]:
    return {type(m).__name__ for m in model.modules() if "GELU" in type(m).__name__}


def test_random_init_models_are_built_with_the_decided_activation(tmp_path):
    _, (teacher, _) = tiny_specs(tmp_path)
    gelu, _ = build(teacher, "cpu")
    assert activations(gelu) == {"GELU"}
    quick = OpenClipSpec(teacher.name, None, teacher.config_file, teacher.init_seed, quick_gelu=True)
    model, _ = build(quick, "cpu")
    assert activations(model) == {"QuickGELU"}
    # a random-init twin of ViT-L-14:openai (the GPU bench's teachers) asks for what the tag says
    assert OpenClipSpec("ViT-L-14", None, quick_gelu=quick_gelu_of(OpenClipSpec("ViT-L-14", "openai"))).quick_gelu


def test_bf16_build_casts_weights_once_and_keeps_the_random_init(tmp_path):
    _, (teacher, _) = tiny_specs(tmp_path)
    fp32, _ = build(teacher, "cpu")
    bf16, _ = build(teacher, "cpu", "bf16")
    assert bf16.visual.conv1.weight.dtype == torch.bfloat16 and fp32.visual.conv1.weight.dtype == torch.float32
    assert torch.equal(bf16.visual.conv1.weight, fp32.visual.conv1.weight.to(torch.bfloat16))


def test_random_init_coca_leaves_no_parameter_uninitialised(tmp_path):
    """open_clip never initialises CoCa's text decoder projection (``torch.empty``): garbage, sometimes
    NaN, and then every caption fails (this failed CI). With deterministic algorithms torch fills empty
    memory with NaN, so what is left empty shows every time; both precisions get the same init."""
    from mobileclip_fastload.reinforce.open_clip_models import _build

    coca, _ = tiny_specs(tmp_path)
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        fp32, _ = _build.__wrapped__(coca, "cpu", "fp32")
        bf16, _ = _build.__wrapped__(coca, "cpu", "bf16")
    finally:
        torch.use_deterministic_algorithms(before)
    assert [k for k, v in fp32.state_dict().items() if not torch.isfinite(v).all()] == []
    projection = fp32.text_decoder.text_projection
    low = bf16.text_decoder.text_projection  # as open_clip's bf16 build keeps it
    assert torch.equal(low, projection.to(low.dtype))
    assert projection.std().item() == pytest.approx(fp32.text_decoder.width**-0.5, rel=0.2)


def test_coca_preprocessing_from_the_configs_is_the_built_models_own(tmp_path):
    from mobileclip_fastload.reinforce.captioners import OpenClipCaptioner
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from PIL import Image

    coca, _ = tiny_specs(tmp_path)
    model, _ = build(coca, "cpu")
    cfg = preprocess_cfg_of(coca)
    assert cfg == {**dict(model.visual.preprocess_cfg), "size": tuple(cfg["size"])}
    rgb = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    own = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)(Image.fromarray(rgb))
    assert torch.equal(OpenClipCaptioner(coca).prepare(rgb), own)
    for tag in ("mscoco_finetuned_laion2B-s13B-b90k",):
        cfg = preprocess_cfg_of(OpenClipSpec("coca_ViT-L-14", tag))
        assert cfg["size"] == (224, 224) and cfg["interpolation"] == "bicubic" and cfg["resize_mode"] == "shortest"


def test_coca_encodes_each_image_once_for_its_captions(tmp_path, one_torch_thread, monkeypatch):
    """generate() encodes its whole batch; the captioner hands it S copies of each image, so the image tower
    runs on N rows, not N x S, and the captions are those of the plain call (same rows, same seeds)."""
    from mobileclip_fastload.reinforce.captioners import OpenClipCaptioner, encode_each_image_once

    coca, _ = tiny_specs(tmp_path)
    captioner = OpenClipCaptioner(coca, tag="tiny", num_captions=3, seq_len=8, images_per_call=4)
    model, _ = build(coca, "cpu")
    rows_seen = []
    hook = model.visual.register_forward_hook(lambda module, args, out: rows_seen.append(args[0].shape[0]))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40 + 7 * i, 50, 3), dtype=np.uint8) for i in range(5)]
    try:
        fast = captioner.caption(images, list(range(5)), "cpu")
    finally:
        hook.remove()
    assert rows_seen == [4, 1]  # two generate calls (4 + 1 images), each image once
    x = torch.stack([captioner.prepare(im) for im in images[:4]]).repeat_interleave(3, dim=0)
    with torch.inference_mode():
        plain = model._encode_image(x)
        with encode_each_image_once(model, 3):
            once = model._encode_image(x)
    assert "_encode_image" not in vars(model)  # the method is back
    for a, b in zip(plain, once):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert len(fast) == 5 and all(len(c) == 3 for c in fast)
    import contextlib

    from mobileclip_fastload.reinforce import captioners

    monkeypatch.setattr(captioners, "encode_each_image_once", lambda model, copies: contextlib.nullcontext())
    assert captioner.caption(images, list(range(5)), "cpu") == fast  # the plain generate: the same captions
