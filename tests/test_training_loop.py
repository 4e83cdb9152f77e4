"""Training loop: optimisation, exact resume, accumulation, sources, optimiser, CLI, torchrun, evaluation."""

import contextlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mobileclip_fastload_train.data import InMemoryReinforcedSource, as_batch, random_reinforced_source
from mobileclip_fastload_train.evaluate import retrieval_recall_from_features, topk_accuracy, zero_shot_accuracy
from mobileclip_fastload_train.loss import ReinforcedClipLoss
from mobileclip_fastload_train.models import create_model
from mobileclip_fastload_train.optim import build_optimizer, lr_at
from mobileclip_fastload_train.train import TrainConfig, _prepare, _train_step, main, train

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny(seed=0):
    torch.manual_seed(seed)
    return create_model("tiny-S0", image_size=32, text_width=32, embed_dim=32)


def _cfg(**kw):
    base = dict(steps=10, warmup=2, precision="fp32", progress=False, log_every=1, num_teachers=2)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_a_few_steps_reduce_the_loss_on_a_tiny_dataset():
    source = random_reinforced_source(16, batch_size=16, image_size=32, num_augs=1, num_syn=1, seed=1)
    result = train(_cfg(steps=25, lr=2e-3, weight_decay=0.0), _tiny(), source)
    losses = [r["loss"] for r in result.history]
    assert len(losses) == 25 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


@pytest.mark.slow
@pytest.mark.parametrize(("stop_at", "loss_captions"), [(3, "both"), (5, "mix")])
def test_resume_gives_the_same_next_losses_as_an_uninterrupted_run(tmp_path, stop_at, loss_captions):
    """40 samples / batch 8 = 5 batches per epoch: stop mid-epoch and exactly at an epoch end."""

    def source():
        return random_reinforced_source(40, batch_size=8, image_size=32, num_augs=3, num_syn=2, seed=2)

    steps = 8
    full = train(_cfg(steps=steps, loss_captions=loss_captions), _tiny(), source())
    out = str(tmp_path / "run")
    first = train(_cfg(steps=steps, loss_captions=loss_captions, output_dir=out, stop_at=stop_at), _tiny(), source())
    assert first.step == stop_at
    # A fresh process would rebuild the model with another init: resume must overwrite it.
    resumed = train(_cfg(steps=steps, loss_captions=loss_captions, output_dir=out), _tiny(seed=123), source())
    full_losses = [r["loss"] for r in full.history]
    assert [r["loss"] for r in first.history] == full_losses[:stop_at]
    assert [r["step"] for r in resumed.history] == list(range(stop_at + 1, steps + 1))
    assert [r["loss"] for r in resumed.history] == full_losses[stop_at:]


@pytest.mark.slow
def test_training_on_a_dr_store_through_fast_loader_resumes_exactly(tmp_path):
    """The real data path: FastReinforcedLoader over a DR store, killed mid-epoch and resumed."""
    from mobileclip_fastload import FastReinforcedLoader
    from mobileclip_fastload.testing.synthetic_store import make_store

    store = make_store(tmp_path / "store", n=24, J=3, S=2, K=2, D=8)

    def loader():  # 24 samples / 4 = 6 batches per epoch
        return FastReinforcedLoader(store, 4, image_size=32, num_threads=1, drop_last=True, seed=3)

    full = train(_cfg(steps=8), _tiny(), loader())
    out = str(tmp_path / "run")
    train(_cfg(steps=8, output_dir=out, stop_at=4), _tiny(), loader())
    resumed = train(_cfg(steps=8, output_dir=out), _tiny(seed=9), loader())
    assert all(math.isfinite(r["loss"]) for r in full.history)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history[4:]]
    assert [r["epoch"] for r in resumed.history] == [0, 0, 1, 1]


@pytest.mark.slow
def test_gradient_accumulation_equals_the_full_batch_gradient():
    """Two micro-batches of 4 with cached features give the gradient of one batch of 8
    (BN frozen; float64 so that only a real difference, not summation order, can fail it)."""
    source = random_reinforced_source(8, batch_size=8, image_size=32, seed=3)
    batch = {k: v.double() if v.is_floating_point() else v for k, v in next(iter(source)).items()}
    batch["images"] = batch["images"].double() / 255
    halves = [{k: v[:4] for k, v in batch.items()}, {k: v[4:] for k, v in batch.items()}]
    cfg = _cfg()
    loss_fn = ReinforcedClipLoss(lam=0.5, num_teachers=2)
    grads = []
    for parts in ([batch], halves):
        model = _tiny().double().eval()
        prepared = [_prepare(as_batch(b), model, cfg, torch.device("cpu"), torch.Generator()) for b in parts]
        _train_step(model, loss_fn, prepared, contextlib.nullcontext())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name in grads[0]:
        torch.testing.assert_close(
            grads[1][name], grads[0][name], rtol=1e-9, atol=1e-12, msg=lambda m, name=name: f"{name}: {m}"
        )


def test_in_memory_source_state_dict_resumes_mid_epoch_and_ranks_are_disjoint():
    def make(rank=0, world=1):
        return random_reinforced_source(48, batch_size=4, image_size=8, seed=5, rank=rank, world_size=world)

    a = make()
    a.set_epoch(2)
    it = iter(a)
    seen = [next(it)["index"] for _ in range(4)]
    state = a.state_dict()
    rest = [b["index"] for b in it]
    b = make()
    b.load_state_dict(state)
    assert [x["index"].tolist() for x in b] == [x.tolist() for x in rest]
    assert len(seen) + len(rest) == len(a) == 12
    r0, r1 = make(0, 2), make(1, 2)
    i0 = torch.cat([x["index"] for x in r0])
    i1 = torch.cat([x["index"] for x in r1])
    assert len(set(i0.tolist()) & set(i1.tolist())) == 0 and len(i0) == len(i1) == 24
    with pytest.raises(ValueError, match="batch_size"):
        InMemoryReinforcedSource(
            a.images, a.text, a.syn_text, a.image_emb, a.text_emb, batch_size=8, seed=5
        ).load_state_dict(state)


def test_in_memory_source_picks_embeddings_of_the_chosen_augmentation_and_caption():
    n, j, s = 6, 3, 2
    images = torch.arange(n * j, dtype=torch.float32).view(n, j, 1, 1, 1).expand(n, j, 3, 2, 2).contiguous()
    syn = torch.arange(n * s).view(n, s, 1).expand(n, s, 77).contiguous()
    image_emb = torch.arange(n * j, dtype=torch.float32).view(n, j, 1).expand(n, j, 4).contiguous()
    text_emb = torch.arange(n * (1 + s), dtype=torch.float32).view(n, 1 + s, 1).expand(n, 1 + s, 4).contiguous()
    text = torch.arange(n).view(n, 1).expand(n, 77).contiguous()
    src = InMemoryReinforcedSource(images, text, syn, image_emb, text_emb, batch_size=3)
    for batch in src:
        idx = batch["index"]
        aug = batch["images"][:, 0, 0, 0].long() - idx * j
        syn_i = batch["syn_text"][:, 0] - idx * s
        assert torch.equal(batch["image_emb"][:, 0].long(), idx * j + aug)
        assert torch.equal(batch["text_emb"][:, 0].long(), idx * (1 + s))
        assert torch.equal(batch["syn_text_emb"][:, 0].long(), idx * (1 + s) + 1 + syn_i)
        assert torch.equal(batch["text"][:, 0], idx)


def test_no_weight_decay_on_norms_biases_scales():
    model = _tiny()
    opt = build_optimizer(model)
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    names = {n: id(p) in decayed for n, p in model.named_parameters()}
    assert opt.param_groups[0]["weight_decay"] == 0.2 and opt.param_groups[1]["weight_decay"] == 0.0
    assert opt.defaults["betas"] == (0.9, 0.95) and opt.defaults["lr"] == 1e-3
    assert not names["logit_scale"]
    assert not names["text.final_layer_norm.weight"] and not names["text.transformer.0.token_mixer.layer_scale"]
    assert not names["text.transformer.0.token_mixer.mixer.rbr_skip.weight"]
    assert not any(v for n, v in names.items() if n.endswith(".bias"))
    assert names["text.embedding_layer.weight"] and names["text.transformer.1.pre_norm_mha.1.qkv_proj.weight"]
    assert names["visual.trunk.head.fc.weight"]


def test_lr_schedule_warmup_then_cosine():
    assert lr_at(0, 1e-3, 10, 100) == pytest.approx(1e-4)
    assert lr_at(9, 1e-3, 10, 100) == pytest.approx(1e-3)
    assert lr_at(55, 1e-3, 10, 100) == pytest.approx(5e-4)
    assert lr_at(100, 1e-3, 10, 100) == pytest.approx(0.0, abs=1e-12)
    values = [lr_at(s, 1e-3, 10, 100) for s in range(10, 100)]
    assert all(a >= b for a, b in itertools.pairwise(values))


@pytest.mark.slow
def test_cli_bf16_run_writes_metrics_and_checkpoint(tmp_path):
    out = tmp_path / "cli"
    main(
        [
            "--fake-data",
            "16",
            "--model",
            "tiny-S0",
            "--batch-size",
            "8",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--output",
            str(out),
            "--log-every",
            "1",
            "--no-progress",
            "--precision",
            "bf16",
            "--device",
            "cpu",
        ]
    )
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in lines)
    state = torch.load(out / "checkpoints" / "latest.pt", weights_only=True)
    # 16 samples / batch 8: both batches of epoch 0 consumed, epoch 1 not started yet.
    assert state["step"] == 2 and state["loader"][0]["batches_done"] == 2 and state["epoch"] == 0


def test_mobileclip_fastload_train_forwards_every_argument_to_training_train(tmp_path, capsys):
    from mobileclip_fastload import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--help"])
    assert exit_.value.code == 0 and "--fake-data" in capsys.readouterr().out
    out = tmp_path / "via-cli"
    assert (
        cli.main(
            [
                "train",
                "--fake-data",
                "8",
                "--model",
                "tiny-S0",
                "--batch-size",
                "8",
                "--steps",
                "1",
                "--warmup",
                "1",
                "--output",
                str(out),
                "--log-every",
                "1",
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1]


def test_mobileclip_fastload_train_without_the_extra_names_it(monkeypatch, capsys):
    import importlib.util

    from mobileclip_fastload import cli

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "timm" else find_spec(name, *a))
    assert cli.main(["train", "--fake-data", "8", "--output", "unused"]) == 2
    assert "pip install 'mobileclip-fastload[train]'" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_reads_a_dr_store(tmp_path):
    from mobileclip_fastload.testing.synthetic_store import make_store

    store = make_store(tmp_path / "store", n=16, J=2, S=2, K=3, D=4)
    out = tmp_path / "cli-store"
    main(
        [
            "--store",
            store,
            "--model",
            "tiny-S0",
            "--batch-size",
            "8",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--output",
            str(out),
            "--no-progress",
            "--precision",
            "fp32",
            "--num-threads",
            "1",
            "--log-every",
            "1",
        ]
    )
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2] and all(math.isfinite(r["kd_loss"]) for r in lines)
    assert torch.load(out / "checkpoints" / "latest.pt", weights_only=True)["config"]["num_teachers"] == 3


def test_cli_draws_only_the_caption_sets_its_regex_picks(tmp_path):
    """--caption-sets reaches the loader (Apple's syn-text-key regex): a bad pattern is refused naming the sets,
    and the loader the run opens draws only the picked set."""
    from mobileclip_fastload.testing.synthetic_store import make_store
    from mobileclip_fastload_train.data import open_store_loader

    sets = [("syn_text", 1), ("syn_text_dfn", 2)]
    store = make_store(tmp_path / "store", n=16, J=2, S=3, K=2, D=4, caption_sets=sets)
    args = ["--store", store, "--model", "tiny-S0", "--batch-size", "8", "--steps", "1", "--warmup", "1"]
    args += ["--no-progress", "--precision", "fp32", "--num-threads", "1"]
    with pytest.raises(ValueError, match=r"caption_sets: .*\^nothing.*syn_text_dfn"):
        main([*args, "--output", str(tmp_path / "bad"), "--caption-sets", "^nothing"])
    main([*args, "--output", str(tmp_path / "dfn"), "--caption-sets", "^syn_text_dfn"])
    loader = open_store_loader(
        store, 8, 32, "bicubic", (0.0,) * 3, (1.0,) * 3, "both", 0.5, 0, 1, caption_sets="^syn_text_d"
    )
    batches = [b for _, b in zip(range(2), loader)]
    assert all((b.caption_set == 1).all() and (b.syn_index >= 1).all() for b in batches)


class _GlobalBatchOfTwoRanks:
    """A single-process source that, per optimiser step, yields the micro-batches both ranks of a
    2-process run read (rank 0's ``accum`` micro-batches, then rank 1's). Each micro-batch is one
    rank's, so BatchNorm sees the same rows as on that rank; the cached-feature accumulation then
    makes the single-process loss and gradient those of the global batch."""

    def __init__(self, rank_sources, accum):
        self.rank_sources, self.accum = rank_sources, accum

    def set_epoch(self, epoch):
        for s in self.rank_sources:
            s.set_epoch(epoch)

    def state_dict(self):  # the loop records where its source stands after every step
        return [s.state_dict() for s in self.rank_sources]

    def __iter__(self):
        its = [iter(s) for s in self.rank_sources]
        while True:
            try:
                step = [next(it) for it in its for _ in range(self.accum)]
            except StopIteration:
                return
            yield from step


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    """Under torchrun the model is wrapped in DDP: both ranks end with identical parameters, and
    the mean of the ranks' losses equals a single-process run on the global batch, step for step
    (without gradient averaging each rank would follow its own data from step 2 on)."""
    out = tmp_path / "ddp"
    steps, batch, accum, samples = 3, 4, 2, 32
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO / "python"), os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        str(REPO / "tests" / "torchrun_rank_snapshot.py"),
        "--fake-data",
        str(samples),
        "--model",
        "tiny-S0",
        "--batch-size",
        str(batch),
        "--steps",
        str(steps),
        "--warmup",
        "1",
        "--precision",
        "fp32",
        "--output",
        str(out),
        "--log-every",
        "1",
        "--no-progress",
        "--device",
        "cpu",
        "--accum-steps",
        str(accum),
    ]
    # Own session, so a hang can be killed with all of torchrun's children.
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("torchrun run timed out")
    assert proc.returncode == 0, stderr[-3000:]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert lines[0]["samples_per_s"] > 0
    state = torch.load(out / "checkpoints" / "latest.pt", weights_only=True)
    assert len(state["loader"]) == 2 and state["loader"][1]["world_size"] == 2

    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0]["params"].keys() == ranks[1]["params"].keys()
    for name, p0 in ranks[0]["params"].items():
        assert torch.equal(p0, ranks[1]["params"][name]), f"ranks disagree on {name} after training"
    assert ranks[0]["losses"] != ranks[1]["losses"]  # each rank scores its own rows

    # The same run in one process: main's seed and model, both ranks' data as one global batch.
    torch.manual_seed(0)
    model = create_model("tiny-S0")
    sources = [
        random_reinforced_source(
            samples, batch, model.preprocess.image_size, num_teachers=2, seed=0, rank=r, world_size=2
        )
        for r in range(2)
    ]
    single = train(
        TrainConfig(steps=steps, warmup=1, precision="fp32", accum_steps=2 * accum, progress=False, num_teachers=2),
        model,
        _GlobalBatchOfTwoRanks(sources, accum),
    )
    mean_rank_loss = [(a + b) / 2 for a, b in zip(ranks[0]["losses"], ranks[1]["losses"])]
    assert mean_rank_loss == pytest.approx([r["loss"] for r in single.history], rel=1e-4)


# ---------------------------------------------------------------- evaluation
def test_retrieval_recall_counts_hits():
    img = F.normalize(torch.eye(4), dim=-1)
    txt = img[[0, 1, 3, 2]]  # captions 2 and 3 swapped
    r = retrieval_recall_from_features(img, txt, ks=(1, 2))
    assert r["i2t_r1"] == 0.5 and r["t2i_r1"] == 0.5
    # Two captions for image 0: an image->text hit if either is top-1.
    r = retrieval_recall_from_features(img, torch.cat([img, img[:1]]), torch.tensor([0, 1, 2, 3, 0]), ks=(1,))
    assert r["i2t_r1"] == 1.0 and r["t2i_r1"] == 1.0
    # caption t = e_t' + 0.1 e_(t'-1) with t' = (1, 0, 2, 3)[t]: image 0 finds its caption second,
    # image 1 not in the top 2 (captions 0 and 2 come first), images 2 and 3 first.
    near = F.normalize(img + 0.1 * torch.roll(img, 1, dims=0), dim=-1)
    r = retrieval_recall_from_features(img, near[[1, 0, 2, 3]], ks=(1, 2))
    assert r["i2t_r1"] == 0.5 and r["i2t_r2"] == 0.75


def test_topk_accuracy():
    logits = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.5, 0.4]])
    acc = topk_accuracy(logits, torch.tensor([0, 1, 2]), ks=(1, 2))
    assert acc["top1"] == pytest.approx(1 / 3) and acc["top2"] == pytest.approx(1.0)


class _TableEncoder(torch.nn.Module):
    """Stub CLIP encoder with chosen outputs: token 1 of a prompt indexes a table of unit text
    embeddings; images are given as their (unnormalised) features."""

    def __init__(self, text_table):
        super().__init__()
        self.text_table = torch.nn.Parameter(F.normalize(text_table, dim=-1), requires_grad=False)

    def encode_text(self, tokens):
        return self.text_table[tokens[:, 1]]

    def encode_image(self, images):
        return F.normalize(images, dim=-1)


def test_zero_shot_uses_prompt_templates():
    """Two classes, two templates, 4-d features e0..e3: "a cat." -> e2, "a photo of a cat." -> e0,
    "a zebra." -> e3, "a photo of a zebra." -> e1. The prompt ensemble gives class vectors
    (e0 + e2)/sqrt2 and (e1 + e3)/sqrt2 and classifies all three images right; the first template
    alone gets 1/3 (only image 2), the second alone 2/3 (images 0 and 1)."""
    templates = ["a {}.", "a photo of a {}."]
    prompts = ["a cat.", "a photo of a cat.", "a zebra.", "a photo of a zebra."]
    e = torch.eye(4)
    model = _TableEncoder(torch.stack([e[2], e[0], e[3], e[1]]))
    seen = []

    def tokenizer(texts):
        seen.extend(texts)
        return torch.tensor([[49406, prompts.index(t), 49407] for t in texts])

    images = torch.stack([e[0] + 0.6 * e[3], e[1] + 0.6 * e[2], e[2] + 0.6 * e[1]])
    labels = torch.tensor([0, 1, 0])
    out = zero_shot_accuracy(model, images, labels, ["cat", "zebra"], templates, tokenizer, ks=(1,))
    assert sorted(seen) == sorted(prompts)
    assert out["top1"] == 1.0
    # The construction itself: each template alone misclassifies some image.
    for template, expected in ((templates[0], 1 / 3), (templates[1], 2 / 3)):
        single = zero_shot_accuracy(model, images, labels, ["cat", "zebra"], [template], tokenizer, ks=(1,))
        assert single["top1"] == pytest.approx(expected)
