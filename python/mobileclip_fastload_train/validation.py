"""Zero-shot and retrieval evaluation during training, sharded over the ranks.

Every rank encodes its own contiguous slice of the images, prompts and captions; the
features are all-gathered and every rank computes the (cheap) metrics from the full set,
rank 0 records them. Sharding rather than evaluating on rank 0 alone: the other ranks cannot
take a step until rank 0 is back (DDP's next all-reduce waits for it), so they would idle for
the whole evaluation; sharded, each rank works 1/world of it and nobody waits longer than the
slowest slice. The metrics are clip_benchmark's (``accuracy``, ``recall_at_k``), so a number
logged here and one from ``python -m mobileclip_fastload_train.evaluate`` (clip_benchmark's runner) mean the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F

from mobileclip_fastload_train.distributed import DistInfo, all_gather_objects
from mobileclip_fastload_train.eval_data import ClassFolderSet, RetrievalSet, prompt
from mobileclip_fastload_train.models import CLIPModel

Tokenizer = Callable[[Sequence[str]], torch.Tensor]
RECALL_KS = (1, 5, 10)


def _shard(n: int, info: DistInfo) -> range:
    """This rank's contiguous slice of ``n`` items (the first ``n % world`` ranks take one more)."""
    base, extra = divmod(n, info.world_size)
    start = info.rank * base + min(info.rank, extra)
    return range(start, start + base + (info.rank < extra))


def _gathered(local: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The ranks' slices, concatenated in rank order (so in the order of the full set)."""
    return torch.cat(cast("list[torch.Tensor]", all_gather_objects(local.cpu(), info)))


class _Encoder:
    def __init__(self, model: CLIPModel, tokenizer: Tokenizer, batch_size: int, autocast: bool) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.device = next(model.parameters()).device
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()

    @torch.no_grad()
    def texts(self, texts: Sequence[str], dim: int) -> torch.Tensor:
        out = [torch.empty(0, dim)]
        for i in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[i : i + self.batch_size])).to(self.device)
            with self.autocast:
                out.append(F.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def images(self, dataset: torch.utils.data.Dataset, indices: range, dim: int, workers: int) -> torch.Tensor:
        subset = torch.utils.data.Subset(dataset, list(indices))
        loader = torch.utils.data.DataLoader(subset, batch_size=self.batch_size, num_workers=workers)
        out = [torch.empty(0, dim)]
        for batch in loader:
            images = batch[0] if isinstance(batch, (list, tuple)) else batch
            with self.autocast:
                out.append(F.normalize(self.model.encode_image(images.to(self.device)).float(), dim=-1).cpu())
        return torch.cat(out)


def _embed_dim(model: CLIPModel, tokenizer: Tokenizer) -> int:
    with torch.no_grad():
        return int(model.encode_text(tokenizer(["a"]).to(next(model.parameters()).device)).shape[-1])


def zero_shot_metrics(enc: _Encoder, data: ClassFolderSet, info: DistInfo, dim: int, workers: int) -> dict[str, float]:
    from mobileclip_fastload_train.clip_benchmark_compat import accuracy as clip_benchmark_accuracy

    accuracy = clip_benchmark_accuracy()
    # The classifier: each rank embeds the prompts of its slice of classes.
    local = []
    for c in _shard(len(data.class_names), info):
        name = data.class_names[c]
        emb = enc.texts([prompt(t, name) for t in data.templates], dim).mean(dim=0)
        local.append(emb / emb.norm())
    classifier = _gathered(torch.stack(local) if local else torch.empty(0, dim), info)
    features = _gathered(enc.images(data.dataset, _shard(len(data.dataset), info), dim, workers), info)
    targets = torch.tensor(data.dataset.targets)  # type: ignore[attr-defined]
    logits = features @ classifier.T
    ks = (1, 5) if len(data.class_names) >= 5 else (1,)  # clip_benchmark's rule
    return {f"acc{k}": v for k, v in zip(ks, accuracy(logits, targets, topk=ks))}


def retrieval_metrics(
    enc: _Encoder, data: RetrievalSet, info: DistInfo, dim: int, workers: int, ks: Sequence[int] = RECALL_KS
) -> dict[str, float]:
    from clip_benchmark.metrics.zeroshot_retrieval import recall_at_k

    images = _gathered(enc.images(data.images, _shard(len(data.images), info), dim, workers), info)
    caption_slice = _shard(len(data.captions), info)
    texts = _gathered(enc.texts([data.captions[i] for i in caption_slice], dim), info)
    scores = texts @ images.T  # [captions, images], clip_benchmark's orientation
    positive = torch.zeros_like(scores, dtype=torch.bool)
    positive[torch.arange(len(texts)), data.caption_image] = True
    out = {}
    for k in ks:
        # recall@k as CLIP papers count it: a hit when any positive is in the top k (clip_benchmark's "> 0")
        out[f"image_retrieval_recall@{k}"] = (
            (recall_at_k(scores, positive, min(k, len(images))) > 0).float().mean().item()
        )
        out[f"text_retrieval_recall@{k}"] = (
            (recall_at_k(scores.T, positive.T, min(k, len(texts))) > 0).float().mean().item()
        )
    return out


@dataclass
class Validation:
    """What ``--val-zeroshot`` / ``--val-retrieval`` evaluate; call it on every rank."""

    zero_shot: ClassFolderSet | None = None
    retrieval: RetrievalSet | None = None
    tokenizer: Tokenizer | None = None
    batch_size: int = 64
    workers: int = 0
    autocast: bool = False  # bf16 autocast for the encoders (as clip_benchmark's --amp)
    info: DistInfo = field(default_factory=DistInfo)

    def __call__(self, model: CLIPModel) -> dict[str, float]:
        from mobileclip_fastload_train.evaluate import default_tokenizer

        tokenizer = self.tokenizer or default_tokenizer(model.preprocess.context_length)
        was_training = model.training
        model.eval()
        try:
            enc = _Encoder(model, tokenizer, self.batch_size, self.autocast)
            dim = _embed_dim(model, tokenizer)
            out: dict[str, Any] = {}
            if self.zero_shot is not None:
                metrics = zero_shot_metrics(enc, self.zero_shot, self.info, dim, self.workers)
                out.update({f"zeroshot/{k}": v for k, v in metrics.items()})
            if self.retrieval is not None:
                metrics = retrieval_metrics(enc, self.retrieval, self.info, dim, self.workers)
                out.update({f"retrieval/{k}": v for k, v in metrics.items()})
            return out
        finally:
            model.train(was_training)
