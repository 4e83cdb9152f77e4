"""Reinforced loss vs a plain reference, single process and 2-process gloo (local x global logits)."""

import math
import os
import socket
import tempfile

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from mobileclip_fastload_train.loss import ReinforcedClipLoss, mix_captions, teacher_targets

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- reference
def _softmax_row(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def _reference_pair(img, txt, scale, t_img, t_txt, k, alpha, lam):
    """Textbook definitions with Python loops in float64 (one caption kind)."""
    n = img.shape[0]
    img, txt, t_img, t_txt = (x.double().tolist() for x in (img, txt, t_img, t_txt))
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731

    def student_probs(a, b):
        return [_softmax_row([scale * dot(a[i], b[j]) for j in range(n)]) for i in range(n)]

    def teacher_probs(a, b):
        d = len(a[0]) // k
        out = [[0.0] * n for _ in range(n)]
        for t in range(k):
            sl = slice(t * d, (t + 1) * d)
            for i in range(n):
                p = _softmax_row([alpha * dot(a[i][sl], b[j][sl]) for j in range(n)])
                for j in range(n):
                    out[i][j] += p[j] / k
        return out

    s_i2t, s_t2i = student_probs(img, txt), student_probs(txt, img)
    clip = -(sum(math.log(s_i2t[i][i]) for i in range(n)) + sum(math.log(s_t2i[i][i]) for i in range(n))) / (2 * n)
    p_i2t, p_t2i = teacher_probs(t_img, t_txt), teacher_probs(t_txt, t_img)
    ce = lambda p, q: -sum(p[i][j] * math.log(q[i][j]) for i in range(n) for j in range(n)) / n  # noqa: E731
    kd = (ce(p_i2t, s_i2t) + ce(p_t2i, s_t2i)) / 2
    return clip, kd


def _random_inputs(n, dim, k, d, seed):
    g = torch.Generator().manual_seed(seed)
    unit = lambda *s: F.normalize(torch.randn(*s, generator=g), dim=-1)  # noqa: E731
    teacher = lambda: unit(n, k, d).reshape(n, k * d)  # noqa: E731  each D-slice normalised on its own
    return dict(
        image_features=unit(n, dim),
        text_features=unit(n, dim),
        syn_text_features=unit(n, dim),
        teacher_image=teacher(),
        teacher_text=teacher(),
        teacher_syn_text=teacher(),
    )


# ---------------------------------------------------------------- single process
@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(2, 6),
    k=st.integers(1, 3),
    lam=st.sampled_from([0.0, 0.25, 0.75, 1.0]),
    scale=st.floats(1.0, 100.0),
    seed=st.integers(0, 2**16),
)
def test_loss_matches_reference(n, k, lam, scale, seed):
    x = _random_inputs(n, dim=8, k=k, d=6, seed=seed)
    out = ReinforcedClipLoss(lam=lam, num_teachers=k, teacher_logit_scale=100.0)(logit_scale=torch.tensor(scale), **x)
    clip_r, kd_r = _reference_pair(
        x["image_features"], x["text_features"], scale, x["teacher_image"], x["teacher_text"], k, 100.0, lam
    )
    clip_s, kd_s = _reference_pair(
        x["image_features"], x["syn_text_features"], scale, x["teacher_image"], x["teacher_syn_text"], k, 100.0, lam
    )
    expected = (1 - lam) * (clip_r + clip_s) + lam * (kd_r + kd_s)
    assert out.loss.item() == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert out.clip.item() == pytest.approx(clip_r + clip_s, rel=1e-4, abs=1e-5)
    if lam > 0:
        assert out.kd.item() == pytest.approx(kd_r + kd_s, rel=1e-4, abs=1e-5)


def test_real_caption_only_when_no_synthetic_features():
    x = _random_inputs(4, 8, 2, 6, seed=3)
    loss = ReinforcedClipLoss(lam=0.5, num_teachers=2)
    full = loss(logit_scale=torch.tensor(20.0), **x)
    x.pop("syn_text_features"), x.pop("teacher_syn_text")
    real = loss(logit_scale=torch.tensor(20.0), **x)
    clip_r, kd_r = _reference_pair(
        x["image_features"], x["text_features"], 20.0, x["teacher_image"], x["teacher_text"], 2, 100.0, 0.5
    )
    assert real.loss.item() == pytest.approx(0.5 * clip_r + 0.5 * kd_r, rel=1e-4)
    assert full.loss.item() > real.loss.item()


def test_teacher_targets_average_after_softmax_not_before():
    """Two teachers with unequal logits for one query and two keys (D = 2 per teacher):
    teacher 1 scores the keys (1, 0), teacher 2 (0.6, 0.8); alpha = 5.
    Mean of softmaxes: key 0 gets (sigmoid(5) + sigmoid(-1)) / 2 = 0.631;
    the softmax of the mean logits would give sigmoid(2) = 0.881."""
    q = torch.tensor([[1.0, 0.0, 0.6, 0.8]])
    keys = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    sigmoid = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731  softmax of two logits (a, b) = sigmoid(a - b)
    p0 = (sigmoid(5.0 * (1.0 - 0.0)) + sigmoid(5.0 * (0.6 - 0.8))) / 2
    p = teacher_targets(q, keys, num_teachers=2, teacher_logit_scale=5.0)
    torch.testing.assert_close(p, torch.tensor([[p0, 1.0 - p0]]), rtol=0, atol=1e-6)
    assert abs(p0 - sigmoid(5.0 * ((1.0 + 0.6) - (0.0 + 0.8)) / 2)) > 0.2  # the two formulas do differ here
    one_teacher = teacher_targets(q[:, :2], keys[:, :2], num_teachers=1, teacher_logit_scale=5.0)
    torch.testing.assert_close(one_teacher, torch.tensor([[sigmoid(5.0), sigmoid(-5.0)]]), rtol=0, atol=1e-6)


def test_lambda_one_is_the_kd_term_alone_lambda_zero_the_clip_term_alone():
    x = _random_inputs(5, 8, 2, 6, seed=1)
    s = torch.tensor(30.0)
    clip_r, kd_r = _reference_pair(
        x["image_features"], x["text_features"], 30.0, x["teacher_image"], x["teacher_text"], 2, 100.0, 1.0
    )
    clip_s, kd_s = _reference_pair(
        x["image_features"], x["syn_text_features"], 30.0, x["teacher_image"], x["teacher_syn_text"], 2, 100.0, 1.0
    )
    assert clip_r + clip_s > 1.0  # a CLIP term left in the lambda = 1 loss would show

    kd_only = ReinforcedClipLoss(lam=1.0, num_teachers=2)(logit_scale=s, **x)
    assert kd_only.loss.item() == pytest.approx(kd_r + kd_s, rel=1e-5)
    assert kd_only.loss.item() == kd_only.kd.item()
    clip_only = ReinforcedClipLoss(lam=0.0, num_teachers=2)(logit_scale=s, **x)
    assert clip_only.loss.item() == pytest.approx(clip_r + clip_s, rel=1e-5)
    assert clip_only.loss.item() == clip_only.clip.item()
    # lambda = 0 does not read the teachers at all.
    no_teacher = {k: v for k, v in x.items() if not k.startswith("teacher")}
    assert ReinforcedClipLoss(lam=0.0, num_teachers=2)(logit_scale=s, **no_teacher).loss.item() == clip_only.loss.item()
    # lambda = 1 ignores the labels (which caption is paired with which image): re-pairing the real
    # captions, student and teacher rows alike, leaves it unchanged but changes the CLIP loss.
    perm = torch.tensor([1, 2, 3, 4, 0])
    repaired = dict(x, text_features=x["text_features"][perm], teacher_text=x["teacher_text"][perm])
    assert ReinforcedClipLoss(lam=1.0, num_teachers=2)(logit_scale=s, **repaired).loss.item() == pytest.approx(
        kd_only.loss.item(), rel=1e-6
    )
    assert (
        ReinforcedClipLoss(lam=0.0, num_teachers=2)(logit_scale=s, **repaired).loss.item() > clip_only.loss.item() + 0.1
    )
    # ... but it does follow the teacher.
    shuffled_teacher = dict(x, teacher_text=x["teacher_text"].flip(0))
    assert (
        ReinforcedClipLoss(lam=1.0, num_teachers=2)(logit_scale=s, **shuffled_teacher).loss.item()
        != kd_only.loss.item()
    )


def test_loss_is_float32_under_bf16_autocast():
    x = {k: v.bfloat16() for k, v in _random_inputs(4, 8, 2, 6, seed=2).items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ReinforcedClipLoss(lam=1.0, num_teachers=2)(logit_scale=torch.tensor(50.0), **x)
    assert out.loss.dtype == torch.float32


def test_rejects_teacher_width_not_divisible_by_k():
    x = _random_inputs(3, 8, 1, 7, seed=0)
    with pytest.raises(ValueError, match="not divisible"):
        ReinforcedClipLoss(lam=1.0, num_teachers=2)(logit_scale=torch.tensor(10.0), **x)


def test_mix_captions_swaps_rows_with_probability():
    g = torch.Generator().manual_seed(0)
    n = 4000
    text, syn = torch.zeros(n, 77, dtype=torch.long), torch.ones(n, 77, dtype=torch.long)
    emb, syn_emb = torch.zeros(n, 4), torch.ones(n, 4)
    t, e, mask = mix_captions(text, emb, syn, syn_emb, 0.3, g)
    assert abs(mask.float().mean().item() - 0.3) < 0.03
    assert torch.equal(t[:, 0].bool(), mask) and torch.equal(e[:, 0].bool(), mask)
    assert not mix_captions(text, emb, syn, syn_emb, 0.0, g)[2].any()
    assert mix_captions(text, emb, syn, syn_emb, 1.0, g)[2].all()


# ---------------------------------------------------------------- two processes (gloo)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank, world, port, inputs, lam, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        b = inputs["image_features"].shape[0] // world
        local = {k: v[rank * b : (rank + 1) * b].clone() for k, v in inputs.items()}
        student = {k: local[k].requires_grad_() for k in ("image_features", "text_features", "syn_text_features")}
        scale = torch.tensor(25.0, requires_grad=True)
        out = ReinforcedClipLoss(lam=lam, num_teachers=2)(logit_scale=scale, **local)
        out.loss.backward()
        torch.save(
            {"loss": out.loss.detach(), "grads": {k: v.grad for k, v in student.items()}, "scale_grad": scale.grad},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_two_process_gloo_matches_single_process(lam):
    world, n = 2, 6
    inputs = _random_inputs(n, 8, 2, 6, seed=11)
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_rank_worker, args=(world, _free_port(), inputs, lam, out_dir), nprocs=world, join=True)
        ranks = [torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in range(world)]

    single_in = {k: v.clone() for k, v in inputs.items()}
    student = {k: single_in[k].requires_grad_() for k in ("image_features", "text_features", "syn_text_features")}
    scale = torch.tensor(25.0, requires_grad=True)
    single = ReinforcedClipLoss(lam=lam, num_teachers=2)(logit_scale=scale, **single_in)
    single.loss.backward()

    # DDP averages over ranks: the mean rank loss / gradient is what the optimiser sees.
    mean_loss = sum(r["loss"] for r in ranks) / world
    assert mean_loss.item() == pytest.approx(single.loss.item(), rel=1e-5)
    b = n // world
    for key, tensor in student.items():
        gathered = torch.cat([r["grads"][key] for r in ranks]) / world
        torch.testing.assert_close(gathered, tensor.grad[: world * b], rtol=1e-4, atol=1e-6)
    mean_scale_grad = sum(r["scale_grad"] for r in ranks) / world
    torch.testing.assert_close(mean_scale_grad, scale.grad, rtol=1e-4, atol=1e-6)
