"""Deployment latency, batch 1: MobileCLIP's image and text encoders against open_clip's ViT-B/16 and
ViT-L/14 (the paper's comparison: S0 4.8x and S2 2.3x faster than OpenAI's ViT-B/16, Core ML on an
iPhone 12 Pro Max), in PyTorch eager (train-time and reparameterised) and ONNX Runtime (the graph
``mobileclip-fastload export`` writes), at 1 thread and at all threads.

    PYTHONPATH=python python benches/bench_latency.py                       # every model, 20 repeats
    PYTHONPATH=python python benches/bench_latency.py --repeats 5 --models MobileCLIP-S0 ViT-B-16

All models are random-init (latency does not depend on the weights). Each (model, tower, threads)
group times its variants interleaved, one call each per round, after ``--warmup`` calls each; the
median wall time of ``--repeats`` rounds is reported. ``x ViT-B/16`` is ViT-B/16's image + text
latency over the model's in the same runtime and thread count; the paper's ratio is printed beside
it. The paper measured Core ML on a phone's neural engine, so the ratios, not the milliseconds,
are what compares. MobileCLIP2 models are included where ``mobileclip_fastload_train.models`` knows them.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from mobileclip_fastload_train.export import ImageEncoder, TextEncoder, example_image, example_tokens
from mobileclip_fastload_train.export.to_onnx import export_onnx
from mobileclip_fastload_train.models import (
    CLIPModel,
    Preprocess,
    create_model,
    list_models,
    reparameterize,
)

REFERENCE = "ViT-B-16"
OPEN_CLIP_REFERENCES = ("ViT-B-16", "ViT-L-14")
MOBILECLIP = ("MobileCLIP-S0", "MobileCLIP-S1", "MobileCLIP-S2", "MobileCLIP-B")
#: The paper's speed-ups over OpenAI's ViT-B/16, image + text (REFERENCE.md section 11).
PAPER_SPEEDUP = {"MobileCLIP-S0": 4.8, "MobileCLIP-S2": 2.3}
VARIANTS = ("torch train-time", "torch folded", "onnxruntime")


def _open_clip_model(name: str) -> CLIPModel:
    import open_clip

    logging.getLogger().disabled = True  # "no pretrained weights loaded" is the intent
    try:
        oc = open_clip.create_model(name, pretrained=None)
    finally:
        logging.getLogger().disabled = False
    visual = oc.visual
    size = visual.image_size
    preprocess = Preprocess(image_size=size[0] if isinstance(size, tuple) else size)
    return CLIPModel(visual, _OpenClipText(oc), preprocess, name)


def _build(name: str) -> CLIPModel:
    return (_open_clip_model(name) if name in OPEN_CLIP_REFERENCES else create_model(name)).eval()


class _OpenClipText(torch.nn.Module):
    """open_clip's CLIP keeps its text tower in the model itself: its encode_text as a module."""

    def __init__(self, clip: torch.nn.Module) -> None:
        super().__init__()
        self.clip = clip
        del clip.visual  # the image tower is CLIPModel.visual; a second reference would be exported too

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(tokens)


def _folds(model: torch.nn.Module) -> bool:
    return any(hasattr(m, "reparameterize") for m in model.modules())


def _onnx_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _median_interleaved(
    calls: dict[str, Callable[[], object]], warmup: int, repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall ms and median CPU ms of this thread per call (the latter means something at 1 thread only)."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            c, t = time.thread_time(), time.perf_counter()
            call()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.thread_time() - c)
    return (
        {n: statistics.median(ts) * 1e3 for n, ts in wall.items()},
        {n: statistics.median(ts) * 1e3 for n, ts in cpu.items()},
    )


def bench_model(name: str, thread_counts: list[int], warmup: int, repeats: int, workdir: Path) -> dict:
    model = _build(name)
    folded = reparameterize(model)
    folds = _folds(model)
    towers = {
        "image": (ImageEncoder, example_image(model), "image"),
        "text": (TextEncoder, example_tokens(model), "text"),
    }
    result: dict = {"model": name, "folds": folds, "onnx_mb": {}, "ms": {}, "cpu_ms": {}}
    for tower, (encoder_class, example, input_name) in towers.items():
        train_time, deployed = encoder_class(model).eval(), encoder_class(folded).eval()
        path = workdir / f"{name}-{tower}.onnx"
        export_onnx(deployed, example, input_name, f"{tower}_embedding", path)
        result["onnx_mb"][tower] = path.stat().st_size / 2**20
        feed = {input_name: example.numpy()}
        for threads in thread_counts:
            torch.set_num_threads(threads)
            session = _onnx_session(path, threads)
            # the calls run within this iteration; default arguments bind this iteration's objects anyway
            calls: dict[str, Callable[[], object]] = {
                "torch folded": lambda e=deployed, x=example: e(x),
                "onnxruntime": lambda s=session, f=feed: s.run(None, f),
            }
            if folds:
                calls["torch train-time"] = lambda e=train_time, x=example: e(x)
            with torch.inference_mode():
                ms, cpu_ms = _median_interleaved(calls, warmup, repeats)
            if not folds:  # nothing to fold: train-time is the folded model
                ms["torch train-time"], cpu_ms["torch train-time"] = ms["torch folded"], cpu_ms["torch folded"]
            result["ms"][f"{tower}/{threads}"], result["cpu_ms"][f"{tower}/{threads}"] = ms, cpu_ms
        path.unlink()
    del model, folded
    gc.collect()
    return result


def _print_table(results: list[dict], thread_counts: list[int], key: str = "ms") -> None:
    ref = next((r for r in results if r["model"] == REFERENCE), None)
    print(
        f"\n{'model':<15} {'runtime':<17} {'thr':>3} {'image ms':>9} {'text ms':>8} {'total':>8} "
        f"{'x ViT-B/16':>10} {'paper x':>7} {'fold gain':>9}"
    )
    for r in results:
        for threads in thread_counts:
            for variant in VARIANTS:
                image, text = (r[key][f"{tower}/{threads}"][variant] for tower in ("image", "text"))
                total = image + text
                ratio = ""
                if ref is not None:
                    ref_total = sum(ref[key][f"{tower}/{threads}"][variant] for tower in ("image", "text"))
                    ratio = f"{ref_total / total:.2f}x"
                paper = f"{PAPER_SPEEDUP[r['model']]}x" if r["model"] in PAPER_SPEEDUP else ""
                gain = ""
                if variant == "torch folded" and r["folds"]:
                    before = sum(r[key][f"{tower}/{threads}"]["torch train-time"] for tower in ("image", "text"))
                    gain = f"{before / total:.2f}x"
                print(
                    f"{r['model']:<15} {variant:<17} {threads:>3} {image:9.1f} {text:8.1f} {total:8.1f} "
                    f"{ratio:>10} {paper:>7} {gain:>9}"
                )


def _print_sizes(results: list[dict]) -> None:
    print(
        "\nONNX graph sizes (fp32, folded): "
        + ", ".join(
            f"{r['model']} image {r['onnx_mb']['image']:.1f} MiB + text {r['onnx_mb']['text']:.1f} MiB" for r in results
        )
    )


def main() -> None:
    mobileclip2 = tuple(m for m in list_models() if m.startswith("MobileCLIP2-"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # the reference first, ViT-L/14 (the slowest) last
    p.add_argument("--models", nargs="+", default=[REFERENCE, *MOBILECLIP, *mobileclip2, "ViT-L-14"])
    p.add_argument(
        "--num-threads",
        nargs="+",
        type=int,
        default=None,
        help="thread counts (default: 1 and all of this process's cores)",
    )
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument(
        "--table-from",
        type=Path,
        nargs="+",
        default=None,
        help="print the tables of earlier --json files (one run each, same threads) and exit",
    )
    args = p.parse_args()
    if args.table_from:
        runs = [json.loads(path.read_text()) for path in args.table_from]
        _print_tables([r for run in runs for r in run["results"]], runs[0]["threads"])
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    thread_counts = args.num_threads or sorted({1, cores})
    print(
        f"torch {torch.__version__}, {cores} cores, threads {thread_counts}, batch 1, "
        f"median of {args.repeats} interleaved rounds after {args.warmup} warm-up calls"
    )
    torch.manual_seed(0)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models:
            t = time.perf_counter()
            results.append(bench_model(name, thread_counts, args.warmup, args.repeats, Path(workdir)))
            print(f"  {name}: {time.perf_counter() - t:.0f} s", flush=True)
            if args.json:  # after each model, so that a long run stopped early keeps what it measured
                args.json.write_text(
                    json.dumps({"threads": thread_counts, "repeats": args.repeats, "results": results})
                )
    _print_tables(results, thread_counts)


def _print_tables(results: list[dict], thread_counts: list[int]) -> None:
    print("\nWall-clock latency (ms):")
    _print_table(results, thread_counts)
    if 1 in thread_counts:
        print(
            "\nCPU time of the calling thread at 1 thread (ms; what other processes on a shared machine disturb least):"
        )
        _print_table(results, [1], key="cpu_ms")
    _print_sizes(results)


if __name__ == "__main__":
    main()
