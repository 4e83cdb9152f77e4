"""One distillation logit scale per teacher (MobileCLIP2's DFN teachers: 70 and 60).

The expected loss is written out here in float64 numpy, independently of
mobileclip_fastload_train.loss: per caption kind, CLIP = symmetric CE against the diagonal, KD =
CE between mean_k softmax(alpha_k * teacher cosines) and the student's softmax,
both directions; loss = sum over kinds of (1 - lambda) * CLIP + lambda * KD.
"""

import json

import numpy as np
import pytest
import torch
from mobileclip_fastload_train.loss import ReinforcedClipLoss, teacher_targets
from mobileclip_fastload_train.train import TrainConfig, main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _unit_slices(x: np.ndarray, k: int) -> np.ndarray:
    parts = x.reshape(x.shape[0], k, -1)
    return (parts / np.linalg.norm(parts, axis=2, keepdims=True)).reshape(x.shape[0], -1)


def _log_softmax_rows(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _expected_loss(img, txt, syn, s, t_img, t_txt, t_syn, alphas, lam):
    k = len(alphas)
    d = t_img.shape[1] // k
    total = 0.0
    for student_txt, teacher_txt in ((txt, t_txt), (syn, t_syn)):
        logits = s * img @ student_txt.T  # [B, B]: row i = image i against every caption
        diag = np.arange(len(img))
        clip = -(_log_softmax_rows(logits)[diag, diag].mean() + _log_softmax_rows(logits.T)[diag, diag].mean()) / 2
        p_i2t = np.zeros_like(logits)
        p_t2i = np.zeros_like(logits)
        for j, alpha in enumerate(alphas):
            cos = t_img[:, j * d : (j + 1) * d] @ teacher_txt[:, j * d : (j + 1) * d].T
            p_i2t += np.exp(_log_softmax_rows(alpha * cos)) / k
            p_t2i += np.exp(_log_softmax_rows(alpha * cos.T)) / k
        kd_i2t = -(p_i2t * _log_softmax_rows(logits)).sum(1).mean()
        kd_t2i = -(p_t2i * _log_softmax_rows(logits.T)).sum(1).mean()
        kd = (kd_i2t + kd_t2i) / 2
        total += (1 - lam) * clip + lam * kd
    return total


@pytest.mark.parametrize("lam", [1.0, 0.75])
def test_two_teacher_scales_match_a_direct_float64_computation(lam):
    rng = np.random.default_rng(5)
    b, e, k, d = 6, 8, 2, 5
    img, txt, syn = (_unit_slices(rng.normal(size=(b, e)), 1) for _ in range(3))
    # Teacher rows close to each other so that alpha matters (cosines spread over ~0.1).
    base = rng.normal(size=(b, k * d))
    t_img, t_txt, t_syn = (_unit_slices(base + 0.15 * rng.normal(size=(b, k * d)), k) for _ in range(3))
    s = 23.0
    expected = _expected_loss(img, txt, syn, s, t_img, t_txt, t_syn, (70.0, 60.0), lam)

    t = lambda a: torch.from_numpy(a)  # noqa: E731 (float64 all the way)
    out = ReinforcedClipLoss(lam=lam, num_teachers=k, teacher_logit_scale=[70.0, 60.0])(
        t(img), t(txt), torch.tensor(s, dtype=torch.float64), t(t_img), t(t_txt), t(syn), t(t_syn)
    )
    assert out.loss.dtype == torch.float64
    assert out.loss.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)

    # The scales reach the teacher they belong to: swapped or shared scales give other losses.
    for other in ((60.0, 70.0), (70.0, 70.0), (65.0, 65.0)):
        wrong = _expected_loss(img, txt, syn, s, t_img, t_txt, t_syn, other, lam)
        assert abs(wrong - expected) > 1e-4, other


def test_one_value_means_every_teacher():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(4, 3, 6, generator=g), dim=-1).flatten(1)
    keys = torch.nn.functional.normalize(torch.randn(5, 3, 6, generator=g), dim=-1).flatten(1)
    one = teacher_targets(q, keys, 3, 60.0)
    assert torch.equal(one, teacher_targets(q, keys, 3, [60.0]))
    assert torch.equal(one, teacher_targets(q, keys, 3, (60.0, 60.0, 60.0)))
    assert not torch.allclose(one, teacher_targets(q, keys, 3, (60.0, 60.0, 100.0)))


@pytest.mark.parametrize("scales", [(70.0, 60.0), (70.0, 60.0, 50.0, 40.0)])
def test_a_count_neither_one_nor_k_is_refused(scales):
    with pytest.raises(ValueError, match=r"teacher logit scales .* for 3 teachers \(K\)"):
        ReinforcedClipLoss(num_teachers=3, teacher_logit_scale=scales)
    with pytest.raises(ValueError, match=r"for 3 teachers \(K\)"):
        TrainConfig(num_teachers=3, teacher_logit_scale=scales)
    with pytest.raises(ValueError, match="finite and positive"):
        ReinforcedClipLoss(num_teachers=2, teacher_logit_scale=(70.0, -1.0))


@pytest.mark.slow
def test_the_cli_stores_one_scale_per_teacher_in_the_run_config(tmp_path):
    common = [
        "--fake-data",
        "8",
        "--model",
        "tiny-S0",
        "--batch-size",
        "4",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--no-progress",
        "--precision",
        "fp32",
        "--device",
        "cpu",
        "--num-teachers",
        "2",
    ]
    main([*common, "--output", str(tmp_path / "two"), "--teacher-logit-scale", "70", "60"])
    state = torch.load(tmp_path / "two" / "checkpoints" / "latest.pt", weights_only=True)
    assert tuple(state["config"]["teacher_logit_scale"]) == (70.0, 60.0)
    assert json.loads((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()[0])["step"] == 1

    main([*common, "--output", str(tmp_path / "one"), "--teacher-logit-scale", "80"])
    state = torch.load(tmp_path / "one" / "checkpoints" / "latest.pt", weights_only=True)
    assert tuple(state["config"]["teacher_logit_scale"]) == (80.0, 80.0)

    with pytest.raises(ValueError, match=r"3 teacher logit scales .* for 2 teachers"):
        main([*common, "--output", str(tmp_path / "bad"), "--teacher-logit-scale", "70", "60", "50"])
