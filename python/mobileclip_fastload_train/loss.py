"""The reinforced-training objective of MobileCLIP (arXiv 2311.17049, eq. 1-2).

For a batch of images with a real caption and a synthetic caption, and the
stored teacher-ensemble embeddings of exactly those (augmented image, caption)
choices::

    L = L_pair(image, real caption) + L_pair(image, synthetic caption)
    L_pair = (1 - lambda) * CLIP + lambda * KD

* CLIP: symmetric cross-entropy of ``s * I @ T.T`` against the matching pairs.
* KD: cross-entropy between the teacher targets and the student's softmax, in
  both directions. Targets are the mean over the K teachers of the row-softmax
  of ``alpha_k * E_img^k @ E_txt^k.T`` ("average after softmax"; alpha = 100 for
  both DataCompDR teachers, 70 and 60 for MobileCLIP2's DFN teachers: one alpha
  per teacher, or one for all).
  The teacher embedding is ``K`` slices of ``D`` dims concatenated; each slice
  is already L2-normalised on its own, so slice dot products are cosines.

Under data parallelism each rank scores its *local* rows against the *global*
(all-gathered) columns, for the student and the teacher alike, with labels
offset by ``rank * local_batch`` (open_clip's ``local_loss`` + ``gather_with_grad``,
which is how the DataCompDR runs were launched). The mean of the per-rank
losses equals the single-process loss on the concatenated batch, and since the
all-gather passes gradients back to the rank that produced each row, the
DDP-averaged gradients equal the single-process ones.

Logits and softmaxes are computed in float32 (float64 if given) even under autocast.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward returns to each rank the sum, over all ranks,
    of the gradients with respect to that rank's rows."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        rank, world = _world()
        ctx.rank, ctx.rows = rank, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        if dist.get_backend() == "nccl":
            out = torch.empty((ctx.rows, *grad.shape[1:]), dtype=grad.dtype, device=grad.device)
            dist.reduce_scatter_tensor(out, grad)
            return out
        dist.all_reduce(grad)  # gloo has no reduce_scatter: sum everything, keep our rows
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank (rank order); gradients flow back to each owner."""
    _, world = _world()
    if world == 1:
        return x
    return _AllGatherWithGrad.apply(x)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    _, world = _world()
    if world == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def per_teacher_scales(teacher_logit_scale: float | Sequence[float], num_teachers: int) -> tuple[float, ...]:
    """The K distillation logit scales: one value means the same for every teacher."""
    if num_teachers < 1:
        raise ValueError(f"the number of teachers must be >= 1, got {num_teachers}")
    given = teacher_logit_scale
    scales = (given,) if isinstance(given, numbers.Real) else tuple(given)
    if len(scales) == 1:
        scales = scales * num_teachers
    if len(scales) != num_teachers:
        raise ValueError(
            f"got {len(scales)} teacher logit scales {list(scales)} for {num_teachers} teachers (K): "
            "give one value (used for every teacher) or one per teacher"
        )
    if not all(math.isfinite(float(s)) and float(s) > 0 for s in scales):
        raise ValueError(f"teacher logit scales must be finite and positive, got {list(scales)}")
    return tuple(float(s) for s in scales)


@functools.lru_cache(maxsize=32)
def _scales_on(scales: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The K scales as a ``[K, 1, 1]`` tensor, made once per (scales, dtype, device): a tensor built
    from a list in every step would be a blocking host-to-device copy (a synchronisation) on CUDA."""
    return torch.tensor(scales, dtype=dtype, device=device).view(len(scales), 1, 1)


def teacher_targets(
    queries: torch.Tensor,
    keys: torch.Tensor,
    num_teachers: int,
    teacher_logit_scale: float | Sequence[float],
) -> torch.Tensor:
    """``mean_k softmax(alpha_k * q_k @ k_k.T, dim=1)``: the ensemble's soft matching targets.

    ``queries`` is ``[b, K*D]``, ``keys`` ``[n, K*D]``; ``teacher_logit_scale`` is one
    alpha for all teachers or K of them; returns ``[b, n]`` (rows sum to 1).
    """
    if queries.shape[1] % num_teachers != 0:
        raise ValueError(
            f"teacher embedding width {queries.shape[1]} is not divisible by the number of teachers {num_teachers}"
        )
    scales = per_teacher_scales(teacher_logit_scale, num_teachers)
    q = _at_least_fp32(queries).unflatten(1, (num_teachers, -1))  # [b, K, D]
    k = _at_least_fp32(keys).unflatten(1, (num_teachers, -1)).to(q.dtype)  # [n, K, D]
    alpha = _scales_on(scales, q.dtype, q.device)
    logits = alpha * torch.einsum("bkd,nkd->kbn", q, k)
    return logits.softmax(dim=-1).mean(dim=0)


def soft_cross_entropy(targets: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``mean_rows( -sum_cols targets * log_softmax(logits) )``."""
    return -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()


@dataclass
class LossOutput:
    loss: torch.Tensor  # what is back-propagated
    clip: torch.Tensor  # unweighted CLIP loss, summed over caption kinds (for logging)
    kd: torch.Tensor  # unweighted distillation loss, summed over caption kinds (0 if lambda == 0)

    def as_floats(self) -> dict[str, float]:
        return {
            "loss": float(self.loss.detach()),
            "clip_loss": float(self.clip.detach()),
            "kd_loss": float(self.kd.detach()),
        }


class ReinforcedClipLoss(nn.Module):
    """CLIP + ensemble distillation over (image, real caption) and (image, synthetic caption).

    Args:
        lam: distillation weight lambda (1.0 for MobileCLIP-S*, 0.75 for B; 0 gives plain CLIP).
        num_teachers: K, the number of D-wide slices in each teacher embedding.
        teacher_logit_scale: alpha, the teachers' fixed logit scales: one value for all
            teachers (100 for DataCompDR) or one per teacher (MobileCLIP2's DFN pair: 70, 60).
    """

    def __init__(
        self, lam: float = 1.0, num_teachers: int = 2, teacher_logit_scale: float | Sequence[float] = 100.0
    ) -> None:
        super().__init__()
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lambda must be in [0, 1], got {lam}")
        self.lam = float(lam)
        self.num_teachers = int(num_teachers)
        self.teacher_logit_scale = per_teacher_scales(teacher_logit_scale, self.num_teachers)

    def pair_terms(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        teacher_image: torch.Tensor | None,
        teacher_text: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unweighted (CLIP, KD) for one caption kind, local rows x global columns."""
        rank, _ = _world()
        img = _at_least_fp32(image_features)
        txt = _at_least_fp32(text_features)
        all_img, all_txt = gather_with_grad(img), gather_with_grad(txt)
        scale = _at_least_fp32(logit_scale)
        logits_i2t = scale * img @ all_txt.T  # [b, N]
        logits_t2i = scale * txt @ all_img.T
        labels = torch.arange(img.shape[0], device=img.device) + rank * img.shape[0]
        clip = (F.cross_entropy(logits_i2t, labels) + F.cross_entropy(logits_t2i, labels)) / 2

        kd = torch.zeros((), device=img.device)
        if self.lam > 0.0:
            if teacher_image is None or teacher_text is None:
                raise ValueError("lambda > 0 needs the teacher image and text embeddings")
            t_img, t_txt = _at_least_fp32(teacher_image), _at_least_fp32(teacher_text)
            all_t_img, all_t_txt = gather_no_grad(t_img), gather_no_grad(t_txt)
            p_i2t = teacher_targets(t_img, all_t_txt, self.num_teachers, self.teacher_logit_scale)
            p_t2i = teacher_targets(t_txt, all_t_img, self.num_teachers, self.teacher_logit_scale)
            kd = (soft_cross_entropy(p_i2t, logits_i2t) + soft_cross_entropy(p_t2i, logits_t2i)) / 2
        return clip, kd

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        teacher_image: torch.Tensor | None = None,
        teacher_text: torch.Tensor | None = None,
        syn_text_features: torch.Tensor | None = None,
        teacher_syn_text: torch.Tensor | None = None,
    ) -> LossOutput:
        with torch.autocast(device_type=image_features.device.type, enabled=False):
            clip, kd = self.pair_terms(image_features, text_features, logit_scale, teacher_image, teacher_text)
            if syn_text_features is not None:
                clip_s, kd_s = self.pair_terms(
                    image_features, syn_text_features, logit_scale, teacher_image, teacher_syn_text
                )
                clip, kd = clip + clip_s, kd + kd_s
            loss = (1.0 - self.lam) * clip + self.lam * kd if self.lam > 0.0 else clip
        return LossOutput(loss=loss, clip=clip, kd=kd)


def mix_captions(
    text: torch.Tensor,
    text_emb: torch.Tensor | None,
    syn_text: torch.Tensor,
    syn_text_emb: torch.Tensor | None,
    probability: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """The "mix" caption mode: per sample, use the synthetic caption (and its teacher
    embedding) instead of the real one with probability ``probability``; the loss then
    has a single caption term. Returns (text, text_emb, is_synthetic mask)."""
    take_syn = torch.rand(text.shape[0], generator=generator) < probability
    mask = take_syn.to(text.device)
    text = torch.where(mask[:, None], syn_text, text)
    if text_emb is not None and syn_text_emb is not None:
        text_emb = torch.where(mask[:, None], syn_text_emb, text_emb)
    return text, text_emb, mask
