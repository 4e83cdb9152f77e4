"""The reinforcement reproduction pipeline runs end to end (tiny sizes; its numbers are not checked)."""

import json

import numpy as np
import pytest
import torch
from mobileclip_fastload_train.experiments import shapes
from mobileclip_fastload_train.experiments.reinforce_repro import ExperimentConfig, reinforce, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_shapes_world_is_deterministic_and_captions_describe_the_image():
    a = shapes.Attributes("red", "triangle", "large", "left")
    img1 = shapes.render(a, np.random.default_rng(0))
    img2 = shapes.render(a, np.random.default_rng(0))
    assert img1.shape == (3, 40, 40) and img1.dtype == np.uint8 and np.array_equal(img1, img2)
    # The shape sits on the left: the left half is much redder than the right half.
    red = img1[0].astype(float) - img1[1]
    assert red[:, :20].mean() > red[:, 20:].mean() + 20
    syn = shapes.synthetic_captions(a, np.random.default_rng(1), 5)
    assert all("red" in c and "triangle" in c for c in syn)
    assert shapes.eval_caption(a) not in syn and len(shapes.ALL_COMBINATIONS) == 384


@pytest.mark.slow
def test_quick_pipeline_writes_table_plot_and_curves(tmp_path):
    results = run(ExperimentConfig.quick(str(tmp_path)))
    assert set(results["students"]) == {"clip", "clip+syn", "reinforced"}
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert "student reinforced" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "dr-store" / "manifest.json").exists() == (results["config"]["data"] == "store")
    saved = json.loads((tmp_path / "results.json").read_text())
    curve = saved["students"]["reinforced"]["curve"]
    assert [p["step"] for p in curve] == [2, 4] and 0.0 <= curve[-1]["i2t_r1"] <= 1.0


def test_reinforce_stores_unit_norm_slices_per_teacher():
    class Fixed(torch.nn.Module):  # a stand-in teacher with known outputs
        def __init__(self, scale):
            super().__init__()
            self.scale = scale
            self.w = torch.nn.Parameter(torch.zeros(1))

        def encode_image(self, x, normalize=True):
            return torch.nn.functional.normalize(x.flatten(1)[:, :3] * self.scale + 1, dim=-1)

        def encode_text(self, t, normalize=True):
            return torch.nn.functional.normalize(t[:, :3].float() * self.scale + 1, dim=-1)

    from mobileclip_fastload_train.experiments.reinforce_repro import Split

    split = Split(
        [],
        [],
        np.zeros((4, 2, 4), dtype=np.int64),
        torch.randint(0, 255, (4, 2, 3, 8, 8), dtype=torch.uint8),
        torch.randint(1, 100, (4, 6)),
        torch.randint(1, 100, (4, 3, 6)),
    )
    image_emb, text_emb = reinforce([Fixed(1.0), Fixed(-2.0)], split)
    assert image_emb.shape == (4, 2, 6) and text_emb.shape == (4, 4, 6) and image_emb.dtype == torch.float16
    for slc in (slice(0, 3), slice(3, 6)):
        torch.testing.assert_close(image_emb[..., slc].float().norm(dim=-1), torch.ones(4, 2), atol=2e-3, rtol=0)
        torch.testing.assert_close(text_emb[..., slc].float().norm(dim=-1), torch.ones(4, 4), atol=2e-3, rtol=0)


def test_store_and_loader_feed_the_same_sample_as_the_in_memory_path(tmp_path):
    """The DR store written by the experiment, read by FastReinforcedLoader, yields exactly the in-memory
    views, tokens and teacher embeddings of the (sample, augmentation, synthetic caption) it picked."""
    from mobileclip_fastload import FastReinforcedLoader
    from mobileclip_fastload_train.experiments.dr_data import write_dr_store
    from mobileclip_fastload_train.experiments.reinforce_repro import _tokenizer, make_split

    cfg = ExperimentConfig.quick(str(tmp_path))
    tokenize = _tokenizer(cfg.context_length)
    split = make_split(12, cfg, np.random.default_rng(0), tokenize, augs=3)
    g = torch.Generator().manual_seed(0)
    image_emb = torch.nn.functional.normalize(torch.randn(12, 3, 2, 8, generator=g), dim=-1).flatten(2).half()
    text_emb = (
        torch.nn.functional.normalize(torch.randn(12, 1 + cfg.num_syn, 2, 8, generator=g), dim=-1).flatten(2).half()
    )
    store = write_dr_store(
        tmp_path / "store",
        split.pngs,
        cfg.canvas,
        split.boxes,
        split.captions,
        split.text,
        split.syn_captions,
        split.syn_text,
        image_emb,
        text_emb,
        num_teachers=2,
    )
    loader = FastReinforcedLoader(
        store,
        4,
        image_size=cfg.image_size,
        interpolation=cfg.interpolation,
        num_threads=1,
        drop_last=True,
        caption_mode="both",
    )
    seen = 0
    for batch in loader:
        i, j, s = batch.index, batch.aug_index, batch.syn_index
        assert torch.equal(batch.images, split.views[i, j].float() / 255.0)
        assert torch.equal(batch.text[:, : cfg.context_length], split.text[i])
        assert not batch.text[:, cfg.context_length :].any()
        assert torch.equal(batch.syn_text[:, : cfg.context_length], split.syn_text[i, s])
        assert torch.equal(batch.image_emb, image_emb[i, j])
        assert torch.equal(batch.text_emb, text_emb[i, 0])
        assert torch.equal(batch.syn_text_emb, text_emb[i, 1 + s])
        seen += len(batch)
    assert seen == 12
