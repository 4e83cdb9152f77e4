"""Small-scale reproduction of MobileCLIP's central claim on a 2-core CPU.

Claim (arXiv 2311.17049): storing a strong teacher ensemble's knowledge
(synthetic captions + teacher embeddings of augmented images and captions) in
the dataset, and training with the distillation loss, makes a small
image-text model learn better than plain CLIP training for the same number of
steps.

Pipeline (all local, procedurally generated, see ``mobileclip_fastload_train.experiments.shapes``):

1. Data. A student training set with noisy web-like "real" captions; a
   disjoint, larger teacher set; a held-out evaluation set with every
   attribute combination once (384 images, captions in an unseen wording).
2. Teacher(s). A larger CLIP (base text transformer; ``--teachers`` adds an
   MCt one to make a K = 2 ensemble), trained on the teacher set with a mix of
   noisy and descriptive captions: the stand-in for the paper's ViT-L/14
   ensemble. Within the CPU budget one teacher trained for all the teacher
   steps is the default (K = 1); the K = 2 path runs in ``--quick`` mode and
   in the loss tests.
3. Reinforcement. For each student image: J RandomResizedCrop boxes, S
   synthetic captions (templated descriptions: the stand-in for CoCa), and the
   teachers' embeddings of every view (the boxes replayed bicubic, as the
   DataCompDR teachers saw them) and caption ([N, J, K*D], [N, 1+S, K*D], each
   D-slice unit-norm, float16). All of it is written as a DR store (PNG bytes,
   40-byte augmentation records, token ids, embeddings).
4. Students. The same tiny MobileCLIP-S0-like model, same init, same steps and
   batch, three arms: ``clip`` (lambda = 0, real captions: plain CLIP),
   ``clip+syn`` (lambda = 0, real + synthetic captions: isolates the
   captions), ``reinforced`` (lambda = 1, real + synthetic: the MobileCLIP recipe).
5. Curves of zero-shot shape/colour accuracy and retrieval recall@1/5 on the
   held-out set, as JSON, a Markdown table and a PNG plot.

Students read the DR store through ``FastReinforcedLoader`` (Rust: PNG decode,
Pillow-exact crop + bicubic resize of the sampled box, as Apple's pipeline
replays for students, the matching embedding rows), exactly as a DataCompDR run
would. Results made before bicubic became the training default (students and
the teacher's training set replayed bilinear) are reproduced with
``--interpolation bilinear``. ``--data memory`` feeds the same
views and embeddings from memory instead (bit-identical batches, tested), for
machines without the compiled extension.

    PYTHONPATH=python python -m mobileclip_fastload_train.experiments.reinforce_repro --out runs/reinforce_repro
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mobileclip_fastload_train.data import InMemoryReinforcedSource
from mobileclip_fastload_train.evaluate import (
    encode_images,
    encode_texts,
    retrieval_recall_from_features,
    zero_shot_accuracy,
)
from mobileclip_fastload_train.experiments import shapes
from mobileclip_fastload_train.experiments.dr_data import (
    encode_png,
    replay_all,
    rrc_boxes,
    store_available,
    write_dr_store,
)
from mobileclip_fastload_train.models import CLIPModel, create_model
from mobileclip_fastload_train.models.clip import Preprocess
from mobileclip_fastload_train.train import TrainConfig, train

# The held-out set is the whole canvas resized for evaluation, with open_clip's MobileCLIP
# evaluation interpolation (training replays use the config's `interpolation`).
EVAL_INTERPOLATION = "bilinear"

ARMS = {
    # name: (lambda, loss captions)
    "clip": (0.0, "real"),
    "clip+syn": (0.0, "both"),
    "reinforced": (1.0, "both"),
}


@dataclass
class ExperimentConfig:
    out: str = "runs/reinforce_repro"
    seed: int = 0
    student_samples: int = 4000
    teacher_samples: int = 12000
    canvas: int = 40  # images are drawn at this size, then cropped/resized to image_size
    image_size: int = 32
    num_augs: int = 4  # J
    num_syn: int = 5  # S
    context_length: int = 24  # templated captions are <= 16 tokens
    # Training replay of the stored boxes (student and teacher training sets); the teacher's
    # reinforcement views are always bicubic. Default: the students' training preprocessing.
    interpolation: str = Preprocess.interpolation
    teachers: tuple[str, ...] = ("tiny-S1",)  # K teachers; "tiny-S0" (MCt text) can be added
    teacher_steps: int = 600
    teacher_batch: int = 128
    teacher_lr: float = 2e-3
    student_steps: int = 600
    student_batch: int = 64
    student_lr: float = 1e-3
    eval_every: int = 100
    arms: tuple[str, ...] = tuple(ARMS)
    num_threads: int = 1
    data: str = "store" if store_available() else "memory"  # student data path: DR store + loader, or memory

    @classmethod
    def quick(cls, out: str) -> ExperimentConfig:
        """A seconds-long run of the whole pipeline (tests, smoke runs); its numbers mean nothing."""
        return cls(
            out=out,
            student_samples=96,
            teacher_samples=128,
            num_augs=2,
            num_syn=2,
            teacher_steps=4,
            teacher_batch=32,
            student_steps=4,
            student_batch=16,
            eval_every=2,
            teachers=("tiny-S1", "tiny-S0"),
        )


# ---------------------------------------------------------------- data
def _tokenizer(context_length: int) -> Callable[[list[str]], torch.Tensor]:
    from open_clip.tokenizer import SimpleTokenizer

    tok = SimpleTokenizer(context_length=context_length)

    def encode(texts: list[str]) -> torch.Tensor:
        out = tok(texts)
        # SimpleTokenizer truncates silently: refuse instead (the EOT must be the row's largest id).
        if not bool((out.max(dim=1).values == 49407).all()):
            raise ValueError(f"a caption does not fit in {context_length} tokens")
        return out

    return encode


@dataclass
class Split:
    attrs: list[shapes.Attributes]
    pngs: list[bytes]  # each image once, as stored in a DR store
    boxes: np.ndarray  # [N, J, 4] RandomResizedCrop boxes (top, left, height, width) on the canvas
    views: torch.Tensor  # [N, J, 3, H, W] uint8: the boxes replayed at the student's size (cfg.interpolation)
    text: torch.Tensor  # [N, L] real caption tokens
    syn_text: torch.Tensor  # [N, S, L]
    captions: list[str] = field(default_factory=list)
    syn_captions: list[list[str]] = field(default_factory=list)


def make_split(n: int, cfg: ExperimentConfig, rng: np.random.Generator, tokenize, augs: int) -> Split:
    attrs = [shapes.random_attributes(rng) for _ in range(n)]
    pngs = [encode_png(shapes.render(a, rng, cfg.canvas)) for a in attrs]
    boxes = rrc_boxes(rng, n, augs, cfg.canvas)
    real = [shapes.real_caption(a, rng) for a in attrs]
    syn = [shapes.synthetic_captions(a, rng, cfg.num_syn) for a in attrs]
    syn_tokens = tokenize([c for row in syn for c in row]).view(n, cfg.num_syn, -1)
    views = replay_all(pngs, boxes, cfg.image_size, cfg.interpolation)
    return Split(attrs, pngs, boxes, views, tokenize(real), syn_tokens, real, syn)


@dataclass
class EvalSet:
    images: torch.Tensor  # [M, 3, H, W] float in [0, 1]
    captions: torch.Tensor  # [M, L]
    shape_labels: torch.Tensor
    colour_labels: torch.Tensor


def make_eval_set(cfg: ExperimentConfig, rng: np.random.Generator, tokenize) -> EvalSet:
    attrs = shapes.ALL_COMBINATIONS
    pngs = [encode_png(shapes.render(a, rng, cfg.canvas)) for a in attrs]
    whole = np.tile(np.array([0, 0, cfg.canvas, cfg.canvas]), (len(attrs), 1, 1))
    views = replay_all(pngs, whole, cfg.image_size, EVAL_INTERPOLATION)[:, 0].float() / 255.0
    return EvalSet(
        views,
        tokenize([shapes.eval_caption(a) for a in attrs]),
        torch.tensor([shapes.SHAPES.index(a.shape) for a in attrs]),
        torch.tensor([list(shapes.COLOURS).index(a.colour) for a in attrs]),
    )


def evaluator(eval_set: EvalSet, tokenize) -> Callable[[CLIPModel], dict[str, float]]:
    def run(model: CLIPModel) -> dict[str, float]:
        out = {}
        for name, labels, classes in (
            ("shape", eval_set.shape_labels, list(shapes.SHAPES)),
            ("colour", eval_set.colour_labels, list(shapes.COLOURS)),
        ):
            acc = zero_shot_accuracy(
                model, eval_set.images, labels, classes, shapes.ZERO_SHOT_TEMPLATES[name], tokenize, ks=(1,)
            )
            out[f"zs_{name}_top1"] = acc["top1"]
        recall = retrieval_recall_from_features(
            encode_images(model, eval_set.images), encode_texts(model, eval_set.captions), ks=(1, 5)
        )
        out.update(recall)
        out["mean"] = float(np.mean([out["zs_shape_top1"], out["zs_colour_top1"], out["i2t_r1"], out["t2i_r1"]]))
        return out

    return run


# ---------------------------------------------------------------- models
def teacher_models(cfg: ExperimentConfig) -> list[CLIPModel]:
    common = dict(
        embed_dim=128,
        image_widths=(24, 48, 96, 192),
        image_depths=(1, 1, 2, 1),
        image_size=cfg.image_size,
        text_width=96,
        text_layers=2,
        text_heads=4,
        context_length=cfg.context_length,
    )
    return [create_model(name, **common) for name in cfg.teachers]


def student_model(cfg: ExperimentConfig) -> CLIPModel:
    return create_model("tiny-S0", image_size=cfg.image_size, context_length=cfg.context_length)


# ---------------------------------------------------------------- reinforcement
@torch.no_grad()
def reinforce(
    teachers: list[CLIPModel], split: Split, views: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-ensemble embeddings of every stored view and caption: ``[N, J, K*D]``, ``[N, 1+S, K*D]`` (float16).

    ``views`` are the teacher's renderings of the stored boxes (default: the student's)."""
    views = split.views if views is None else views
    n, j = views.shape[:2]
    s = split.syn_text.shape[1]
    image_parts, text_parts = [], []
    for t in teachers:
        t.eval()
        img = encode_images(t, views.flatten(0, 1).float() / 255.0).view(n, j, -1)
        captions = torch.cat([split.text.unsqueeze(1), split.syn_text], dim=1).flatten(0, 1)
        txt = encode_texts(t, captions).view(n, 1 + s, -1)
        image_parts.append(F.normalize(img, dim=-1))
        text_parts.append(F.normalize(txt, dim=-1))
    return torch.cat(image_parts, dim=-1).half(), torch.cat(text_parts, dim=-1).half()


def student_source(
    cfg: ExperimentConfig, split: Split, image_emb: torch.Tensor, text_emb: torch.Tensor, store: str | None
):
    """The batch source a student trains on: ``FastReinforcedLoader`` over the DR store when one was
    written (the real data path: PNG decode + exact crop/resize replay in Rust), else the same
    views and embeddings from memory."""
    if store is not None:
        from mobileclip_fastload import FastReinforcedLoader

        return FastReinforcedLoader(
            store,
            cfg.student_batch,
            image_size=cfg.image_size,
            interpolation=cfg.interpolation,
            num_threads=cfg.num_threads,
            seed=cfg.seed,
            shuffle=True,
            drop_last=True,
            caption_mode="both",
        )
    return InMemoryReinforcedSource(
        split.views, split.text, split.syn_text, image_emb, text_emb, batch_size=cfg.student_batch, seed=cfg.seed
    )


# ---------------------------------------------------------------- reporting
def _table(results: dict[str, Any]) -> str:
    cols = ("zs_shape_top1", "zs_colour_top1", "i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5", "mean")
    lines = ["| model | steps | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for name, r in results["teachers"].items():
        lines.append(
            f"| teacher {name} | {r['steps']} | " + " | ".join(f"{100 * r['eval'][c]:.1f}" for c in cols) + " |"
        )
    for arm, r in results["students"].items():
        final = r["curve"][-1]
        lines.append(f"| student {arm} | {final['step']} | " + " | ".join(f"{100 * final[c]:.1f}" for c in cols) + " |")
    lines.append("")
    lines.append(
        "Curves (student, held-out set, %): step: "
        + ", ".join(
            f"{arm}: " + " ".join(f"{p['step']}={100 * p['mean']:.1f}" for p in r["curve"])
            for arm, r in results["students"].items()
        )
        + "  (mean of zero-shot shape/colour top-1 and R@1 both ways)"
    )
    return "\n".join(lines)


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = (
        ("zs_shape_top1", "zero-shot shape top-1"),
        ("zs_colour_top1", "zero-shot colour top-1"),
        ("i2t_r1", "image->text R@1"),
        ("t2i_r1", "text->image R@1"),
        ("i2t_r5", "image->text R@5"),
        ("mean", "mean of the four top rows"),
    )
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (key, title) in zip(axes.flat, metrics):
        for arm, r in results["students"].items():
            ax.plot([p["step"] for p in r["curve"]], [100 * p[key] for p in r["curve"]], marker="o", ms=3, label=arm)
        for t in results["teachers"].values():
            ax.axhline(100 * t["eval"][key], ls=":", lw=1, color="gray")
        ax.set_title(title)
        ax.set_xlabel("student step")
        ax.set_ylabel("%")
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    fig.suptitle("Reinforced (lambda=1, synthetic captions + teacher KD) vs plain CLIP; dotted: teacher(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- pipeline
def run(cfg: ExperimentConfig) -> dict[str, Any]:
    torch.set_num_threads(cfg.num_threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    tokenize = _tokenizer(cfg.context_length)
    student_split = make_split(cfg.student_samples, cfg, rng, tokenize, cfg.num_augs)
    teacher_split = make_split(cfg.teacher_samples, cfg, rng, tokenize, 2)
    eval_set = make_eval_set(cfg, rng, tokenize)
    evaluate = evaluator(eval_set, tokenize)
    timings["data_s"] = time.perf_counter() - t0

    results: dict[str, Any] = {"config": dataclasses.asdict(cfg), "teachers": {}, "students": {}}
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed + 1)
    teachers = teacher_models(cfg)
    for k, teacher in enumerate(teachers):
        source = InMemoryReinforcedSource(
            teacher_split.views,
            teacher_split.text,
            teacher_split.syn_text,
            None,
            None,
            batch_size=cfg.teacher_batch,
            seed=cfg.seed + 10 + k,
        )
        tcfg = TrainConfig(
            steps=cfg.teacher_steps,
            lr=cfg.teacher_lr,
            warmup=max(1, cfg.teacher_steps // 10),
            precision="fp32",
            lam=0.0,
            loss_captions="mix",
            mix_probability=0.5,
            seed=cfg.seed + k,
            progress=False,
        )
        history = train(tcfg, teacher, source).history
        teacher.eval()
        results["teachers"][f"{k}:{teacher.name}"] = {
            "steps": cfg.teacher_steps,
            "eval": evaluate(teacher),
            "final_loss": history[-1]["loss"],
        }
    timings["teachers_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # Teachers see the stored boxes rendered bicubic, as DataCompDR's teachers did; students get
    # cfg.interpolation (by default bicubic too, so here, at one size, the same pixels).
    teacher_views = replay_all(student_split.pngs, student_split.boxes, cfg.image_size, "bicubic")
    image_emb, text_emb = reinforce(teachers, student_split, teacher_views)
    store = None
    if cfg.data == "store":
        store = write_dr_store(
            out / "dr-store",
            student_split.pngs,
            cfg.canvas,
            student_split.boxes,
            student_split.captions,
            student_split.text,
            student_split.syn_captions,
            student_split.syn_text,
            image_emb,
            text_emb,
            len(teachers),
        )
    timings["reinforce_s"] = time.perf_counter() - t0

    for arm in cfg.arms:
        lam, mode = ARMS[arm]
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed + 100)  # same initial student for every arm
        student = student_model(cfg)
        scfg = TrainConfig(
            steps=cfg.student_steps,
            lr=cfg.student_lr,
            warmup=max(1, cfg.student_steps // 10),
            precision="fp32",
            lam=lam,
            loss_captions=mode,
            num_teachers=len(teachers),
            eval_every=cfg.eval_every,
            seed=cfg.seed,
            progress=False,
        )
        history = train(
            scfg, student, student_source(cfg, student_split, image_emb, text_emb, store), eval_fn=evaluate
        ).history
        curve = [
            {"step": r["step"], **{k[len("eval/") :]: v for k, v in r.items() if k.startswith("eval/")}}
            for r in history
            if any(k.startswith("eval/") for k in r)
        ]
        losses = [r for r in history if "loss" in r]
        results["students"][arm] = {
            "lambda": lam,
            "loss_captions": mode,
            "curve": curve,
            "loss": [(r["step"], r["loss"]) for r in losses[:: max(1, len(losses) // 50)]],
        }
        timings[f"student_{arm}_s"] = time.perf_counter() - t0
        (out / "results.json").write_text(json.dumps({**results, "timings": timings}, indent=1))

    results["timings"] = timings
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(_table(results) + "\n")
    _plot(results, out / "curves.png")
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/reinforce_repro")
    p.add_argument("--quick", action="store_true", help="seconds-long smoke run of the pipeline")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--student-steps", type=int, default=None)
    p.add_argument("--teacher-steps", type=int, default=None)
    p.add_argument(
        "--teachers",
        nargs="+",
        default=None,
        choices=("tiny-S1", "tiny-S0"),
        help="teacher architectures (K = how many); default: tiny-S1",
    )
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument(
        "--interpolation",
        choices=("bicubic", "bilinear"),
        default=None,
        help="training replay of the stored boxes (default bicubic; bilinear reproduces the old results)",
    )
    p.add_argument(
        "--data",
        choices=("store", "memory"),
        default=None,
        help="student data path (default: store when the extension is built)",
    )
    args = p.parse_args(argv)
    cfg = ExperimentConfig.quick(args.out) if args.quick else ExperimentConfig(out=args.out)
    cfg.seed, cfg.num_threads = args.seed, args.num_threads
    if args.student_steps:
        cfg.student_steps = args.student_steps
    if args.teacher_steps:
        cfg.teacher_steps = args.teacher_steps
    if args.teachers:
        cfg.teachers = tuple(args.teachers)
    if args.data:
        cfg.data = args.data
    if args.interpolation:
        cfg.interpolation = args.interpolation
    if cfg.data == "store" and not store_available():
        raise SystemExit("--data store needs the mobileclip_fastload extension (scripts/dev-build)")
    results = run(cfg)
    print(_table(results))
    print(json.dumps(results["timings"]))
    return results


if __name__ == "__main__":
    main()
