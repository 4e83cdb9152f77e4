"""Inference speed of MobileCLIP towers before and after reparameterisation (CPU).

    PYTHONPATH=python python benches/bench_reparam.py [--model MobileCLIP-S0] [--num-threads 1]

Reports, per tower, the CPU time per batch (process time, so that other
processes on a shared machine inflate it less than wall time; single-threaded
by default), before vs folded, timed alternately in rounds and taking the best
round's median; the speedup; and the largest output difference in float32
eval mode.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from mobileclip_fastload_train.models import create_model, list_models, reparameterize


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="MobileCLIP-S0", choices=list_models())  # MobileCLIP2-S3/S4: MCi3/MCi4
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--image-batch", type=int, default=8)
    p.add_argument("--text-batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.num_threads)
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    folded = reparameterize(model)
    size = model.preprocess.image_size
    images = torch.rand(args.image_batch, size, size, 3).permute(0, 3, 1, 2).contiguous()
    tokens = torch.randint(1, 49000, (args.text_batch, 77))
    tokens[:, 0], tokens[:, 40] = 49406, 49407
    tokens[:, 41:] = 0
    towers = {
        "image": (lambda m: m.visual(images), args.image_batch),
        "text": (lambda m: m.text(tokens), args.text_batch),
    }
    print(f"{args.model}, {args.num_threads} thread(s), torch {torch.__version__}")
    with torch.inference_mode():
        for name, (run, n) in towers.items():
            diff = (run(model) - run(folded)).abs().max().item()
            for m in (model, folded):  # warm-up
                run(m)
            before, after = [], []
            for _ in range(args.rounds):
                before.append(_median_time(lambda run=run: run(model), args.repeats))
                after.append(_median_time(lambda run=run: run(folded), args.repeats))
            b, a = min(before), min(after)
            params_b = sum(p.numel() for p in getattr(model, "visual" if name == "image" else "text").parameters())
            params_a = sum(p.numel() for p in getattr(folded, "visual" if name == "image" else "text").parameters())
            print(
                f"{name:5s} batch {n:3d}: train-time {b * 1e3:8.1f} ms  folded {a * 1e3:8.1f} ms  "
                f"speedup {b / a:4.2f}x  params {params_b / 1e6:.2f}M -> {params_a / 1e6:.2f}M  max|diff| {diff:.2e}"
            )


if __name__ == "__main__":
    main()
