"""The standard benchmark suite on a checkpoint, run by clip_benchmark (PyPI ``clip-benchmark``).

    python -m mobileclip_fastload_train.evaluate --checkpoint runs/s0/checkpoints/latest.pt \\
        --dataset imagenet1k-unverified mscoco_captions flickr30k --dataset-root /data/{dataset} --output runs/s0/eval

This module is only glue: it registers this project's models as a clip_benchmark model type
(``mobileclip_fastload``: the checkpoint's model, open_clip's evaluation transform, the CLIP BPE
tokenizer), runs clip_benchmark's own ``eval`` (its datasets, templates, metrics and per-task JSON
files) and writes one summary table. Any option not listed below is clip_benchmark's
(``--split``, ``--annotation_file``, ``--custom_classname_file``, ``--language``, ...).
clip_benchmark reads datasets from ``--dataset-root``; one that is absent there it tries to download.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

MODEL_TYPE = "mobileclip_fastload"
#: The one number per task that enters the average (docs/EVALUATION.md says why these).
MAIN_METRIC = {
    "zeroshot_classification": "acc1",
    "zeroshot_retrieval": "mean_recall@1",
    "image_caption_selection": "acc",
}


def load_model(checkpoint: str | Path, model_name: str | None = None, device: str | torch.device = "cpu"):
    """A model of this project from a training checkpoint (``checkpoints/*.pt``) or a plain state dict."""
    from mobileclip_fastload_train.checkpoint import load_checkpoint
    from mobileclip_fastload_train.models import create_model

    state = load_checkpoint(checkpoint)
    if "model" in state and isinstance(state["model"], dict):
        model_name = model_name or state.get("model_name")
        state = state["model"]
    if not model_name:
        raise ValueError(f"{checkpoint}: a plain state dict does not name its model; pass --model")
    model = create_model(model_name)
    model.load_state_dict(state)
    return model.to(device).eval()


def _load_for_clip_benchmark(model_name: str, pretrained: str, cache_dir: str | None = None, device: Any = "cpu"):
    """clip_benchmark's loader contract: (model with encode_image/encode_text, transform, tokenizer)."""
    from mobileclip_fastload_train.eval_data import eval_transform
    from mobileclip_fastload_train.evaluate import default_tokenizer

    model = load_model(pretrained, model_name or None, device)
    return model, eval_transform(model.preprocess), default_tokenizer(model.preprocess.context_length)


def register_model_type() -> None:
    from clip_benchmark import models

    from mobileclip_fastload_train.clip_benchmark_compat import accuracy

    accuracy()  # clip_benchmark's zero-shot accuracy, repaired where NumPy broke it
    models.TYPE2FUNC[MODEL_TYPE] = _load_for_clip_benchmark
    if MODEL_TYPE not in models.MODEL_TYPES:
        models.MODEL_TYPES.append(MODEL_TYPE)  # the list the clip_benchmark CLI offers as choices


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def _clip_benchmark_args(args: argparse.Namespace, passthrough: list[str]) -> argparse.Namespace:
    """clip_benchmark's own parser (its defaults for everything not set here)."""
    from clip_benchmark.cli import get_parser_args

    argv = [
        "clip_benchmark",
        "eval",
        "--model_type",
        MODEL_TYPE,
        "--model",
        args.model or "",
        "--pretrained",
        str(args.checkpoint),
        "--dataset",
        *args.dataset,
        "--dataset_root",
        args.dataset_root,
        "--output",
        str(Path(args.output) / "{dataset}_{task}.json"),
        "--batch_size",
        str(args.batch_size),
        "--num_workers",
        str(args.num_workers),
        "--recall_k",
        *map(str, args.recall_k),
        *passthrough,
    ]
    if not args.amp:
        argv.append("--no_amp")
    with _argv(argv):
        return get_parser_args()[1]


def main_metric(result: dict[str, Any]) -> tuple[str, float]:
    metrics, task = result["metrics"], result["task"]
    if task == "zeroshot_retrieval":
        # one retrieval number: the mean of the two directions' recall@1
        value = (metrics["image_retrieval_recall@1"] + metrics["text_retrieval_recall@1"]) / 2
        return MAIN_METRIC[task], value
    if "mean_average_precision" in metrics:  # multi-label classification (e.g. voc2007_multilabel)
        return "mean_average_precision", metrics["mean_average_precision"]
    name = MAIN_METRIC.get(task)
    if name is None or name not in metrics:
        raise ValueError(f"task {task!r} of dataset {result['dataset']!r}: no main metric in {sorted(metrics)}")
    return name, float(metrics[name])


def summarize(result_files: Sequence[Path]) -> list[dict[str, Any]]:
    """One row per task (dataset, task, main metric, value) and a last row with their average."""
    rows = []
    for path in sorted(result_files):
        result = json.loads(path.read_text())
        metric, value = main_metric(result)
        rows.append({"dataset": result["dataset"], "task": result["task"], "metric": metric, "value": value})
    if rows:
        rows.append(
            {"dataset": "average", "task": "", "metric": "", "value": sum(r["value"] for r in rows) / len(rows)}
        )
    return rows


def write_summary(rows: list[dict[str, Any]], path: Path) -> None:
    from mobileclip_fastload.store.atomic import write_text_atomic

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["dataset", "task", "metric", "value"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, out.getvalue())


def _parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="training checkpoint (checkpoints/latest.pt) or state dict")
    p.add_argument("--model", default=None, help="model name (default: the one the checkpoint records)")
    p.add_argument(
        "--dataset",
        nargs="+",
        required=True,
        help="clip_benchmark dataset names or collections (e.g. imagenet1k-unverified mscoco_captions "
        "flickr30k wds/<name>)",
    )
    p.add_argument("--dataset-root", default="root", help="clip_benchmark's --dataset_root; may use {dataset}")
    p.add_argument("--output", required=True, help="directory for clip_benchmark's JSON results and summary.csv")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument("--recall-k", type=int, nargs="+", default=[1, 5, 10])
    p.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="mixed precision as clip_benchmark does (default on; --no-amp: float32)",
    )
    return p.parse_known_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args, passthrough = _parse(argv)
    if 1 not in args.recall_k:
        args.recall_k = [1, *args.recall_k]  # the summary's retrieval number is recall@1
    try:
        import clip_benchmark.cli as cb
    except ImportError:
        print(
            "error: clip_benchmark not installed; evaluation needs the `eval` extra: "
            "pip install 'mobileclip-fastload[eval]'",
            file=sys.stderr,
        )
        return 2
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    register_model_type()
    cb.main_eval(_clip_benchmark_args(args, passthrough))
    rows = summarize(list(output.glob("*.json")))
    write_summary(rows, output / "summary.csv")
    width = max([len(r["dataset"]) for r in rows] + [7])
    for r in rows:
        print(f"{r['dataset']:<{width}}  {r['task']:<24}  {r['metric']:<22}  {100 * r['value']:6.2f}")
    print(f"summary: {output / 'summary.csv'}")
    return 0
