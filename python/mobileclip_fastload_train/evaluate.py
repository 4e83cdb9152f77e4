"""Evaluation of a CLIP model: zero-shot classification and image-text retrieval.

    python -m mobileclip_fastload_train.evaluate --checkpoint runs/s0/checkpoints/latest.pt \\
        --dataset imagenet1k-unverified mscoco_captions --dataset-root /data/{dataset} --output runs/s0/eval

runs clip_benchmark's suite on a checkpoint (``mobileclip_fastload_train.benchmark_suite``). The functions below
evaluate in-memory tensors (experiments, tests); during training ``mobileclip_fastload_train.validation`` evaluates
benchmark layouts (``mobileclip_fastload_train.eval_data``).

* Zero-shot: each class's text embedding is the normalised mean of the
  normalised embeddings of its prompts (``template.format(class_name)``);
  an image is assigned the class of highest cosine similarity. Top-1/top-5.
* Retrieval: recall@k in both directions on a held-out set of images and
  captions (several captions per image allowed via ``caption_image``):
  image->text counts a hit when any of the image's captions is in the top k;
  text->image when the caption's image is in the top k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from mobileclip_fastload_train.models import CLIPModel

Tokenizer = Callable[[Sequence[str]], torch.Tensor]


def default_tokenizer(context_length: int = 77) -> Tokenizer:
    """OpenAI CLIP BPE (open_clip's ``SimpleTokenizer``); ships with open_clip, no download."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_images(model: CLIPModel, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """L2-normalised features ``[N, D]`` for float images already normalised for the model."""
    dev = _device(model)
    return torch.cat(
        [model.encode_image(images[i : i + batch_size].to(dev)).float() for i in range(0, len(images), batch_size)]
    )


@torch.no_grad()
def encode_texts(model: CLIPModel, tokens: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    dev = _device(model)
    return torch.cat(
        [model.encode_text(tokens[i : i + batch_size].to(dev)).float() for i in range(0, len(tokens), batch_size)]
    )


@torch.no_grad()
def zero_shot_classifier(
    model: CLIPModel, class_names: Sequence[str], templates: Sequence[str], tokenizer: Tokenizer
) -> torch.Tensor:
    """``[C, D]`` class embeddings (prompt-ensembled)."""
    weights = []
    for name in class_names:
        emb = encode_texts(model, tokenizer([t.format(name) for t in templates]))
        weights.append(F.normalize(emb.mean(dim=0), dim=-1))
    return torch.stack(weights)


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    out = {}
    for k in ks:
        k_eff = min(k, logits.shape[1])
        hits = (logits.topk(k_eff, dim=1).indices == labels[:, None].to(logits.device)).any(dim=1)
        out[f"top{k}"] = hits.float().mean().item()
    return out


@torch.no_grad()
def zero_shot_accuracy(
    model: CLIPModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    templates: Sequence[str],
    tokenizer: Tokenizer | None = None,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    classifier = zero_shot_classifier(model, class_names, templates, tokenizer or default_tokenizer())
    return topk_accuracy(encode_images(model, images) @ classifier.T, labels, ks)


def retrieval_recall_from_features(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    caption_image: torch.Tensor | None = None,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """Recall@k from normalised features; ``caption_image[t]`` is the image index of caption ``t``."""
    n_img, n_txt = image_features.shape[0], text_features.shape[0]
    if caption_image is None:
        if n_img != n_txt:
            raise ValueError("caption_image is required when images and captions differ in number")
        caption_image = torch.arange(n_img)
    caption_image = caption_image.to(image_features.device)
    sim = image_features @ text_features.T  # [I, T]
    match = caption_image[None, :] == torch.arange(n_img, device=sim.device)[:, None]  # [I, T]
    out = {}
    for k in ks:
        top_t = sim.topk(min(k, n_txt), dim=1).indices  # [I, k]
        out[f"i2t_r{k}"] = match.gather(1, top_t).any(dim=1).float().mean().item()
        top_i = sim.T.topk(min(k, n_img), dim=1).indices  # [T, k]
        out[f"t2i_r{k}"] = (top_i == caption_image[:, None]).any(dim=1).float().mean().item()
    return out


@torch.no_grad()
def retrieval_recall(
    model: CLIPModel,
    images: torch.Tensor,
    tokens: torch.Tensor,
    caption_image: torch.Tensor | None = None,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    return retrieval_recall_from_features(encode_images(model, images), encode_texts(model, tokens), caption_image, ks)


if __name__ == "__main__":
    from mobileclip_fastload_train.benchmark_suite import main

    raise SystemExit(main())
