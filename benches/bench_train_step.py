"""Training-step speed: MobileCLIP S0/S1/S2/B per step variant, open_clip ViT-B-16 for
comparison, and the training loop end to end fed by three data pipelines.

    python benches/bench_train_step.py                       # on a GPU: the whole table (~6 min on an H200)
    python benches/bench_train_step.py --device cpu --batch 2 --steps 2 --warmup 1 --e2e-samples 24

(1) Step variants (one optimiser step: forward, backward, clipping, fused AdamW; batches
    already on the device): ``plain`` (NCHW, no cuDNN autotuning), ``channels_last``
    (+ cudnn.benchmark: the default fast path on CUDA), ``compiled`` (+ regional
    torch.compile, first-step compile time reported), ``cudagraphs`` (+ compile mode
    reduce-overhead). Reported: ms per step, samples/s, peak device memory per sample
    (params, optimiser state and activations, divided by the batch), image and text tower
    forward+backward alone, and the profiler's top kernels (device time share) and
    kernel count per step.
(2) open_clip ViT-B-16 (random init), 224 px, one caption, the same step.
(3) ``mobileclip_fastload_train.train`` end to end on MobileCLIP-S0 with the default fast path, fed by
    (a) in-memory uint8 batches, (b) FastReinforcedLoader (uint8, one thread per core but
    one left to the training thread, pinned recycled memory on CUDA), (c) the WebDataset + DataLoader reference of
    ``benches/bench_loader_throughput.py`` (open_clip's ``--dataset-resampled`` pipeline over many
    shards, one worker per core): steady-state
    samples/s (the read-back window after warm-up) and the median data wait per step.

On the CPU, channels_last and the compiled variants are skipped: channels_last backward
through MCi's stem aborts in oneDNN (issue 6035, see python/mobileclip_fastload_train/step.py), and inductor's C++
compilation of even the tiny model takes ~12 minutes on a 2-core machine.
Variants with compilation run last and are not started once ``--budget-s`` is spent.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "python"), str(REPO / "benches")]

from mobileclip_fastload_train.data import as_batch, random_reinforced_source  # noqa: E402
from mobileclip_fastload_train.distributed import DistInfo  # noqa: E402
from mobileclip_fastload_train.loss import ReinforcedClipLoss  # noqa: E402
from mobileclip_fastload_train.models import create_model  # noqa: E402
from mobileclip_fastload_train.optim import build_optimizer  # noqa: E402
from mobileclip_fastload_train.step import FastPath, image_memory_format, prepare_model  # noqa: E402
from mobileclip_fastload_train.train import TrainConfig, _grad_norm, _prepare, _train_step, train  # noqa: E402

MODELS = {"S0": "MobileCLIP-S0", "S1": "MobileCLIP-S1", "S2": "MobileCLIP-S2", "B": "MobileCLIP-B",
          **{f"v2-{v}": f"MobileCLIP2-{v}" for v in ("S0", "S2", "B", "S3", "S4", "L-14")}}  # --models v2-S0,...
VARIANTS = {
    "plain": dict(channels_last=False),
    "channels_last": dict(channels_last=True),
    "compiled": dict(channels_last=True, compile=True),
    "cudagraphs": dict(channels_last=True, compile=True, compile_mode="reduce-overhead"),
}
TEACHER_DIM = 768  # DataCompDR: two ViT-L/14 teachers, 768 each


class Timer:
    def __init__(self, device: torch.device) -> None:
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def time(self, fn, n: int) -> float:
        """Seconds per call of ``fn`` over ``n`` calls queued back to back."""
        if n == 0:
            return 0.0
        self.sync()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        self.sync()
        return (time.perf_counter() - t0) / n


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def _reset(device: torch.device) -> None:
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_bytes(device: torch.device) -> int | None:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def _top_kernels(step, device: torch.device, k: int = 5) -> tuple[list[tuple[str, float]], int]:
    """Profile one step: top-k kernels (aten ops on a CPU) by self-time share, and their count."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        step()
        Timer(device).sync()
    if device.type == "cuda":
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        key = "self_device_time_total"
    else:
        kernels = [e for e in prof.events() if e.name.startswith("aten::")]
        key = "self_cpu_time_total"
    rows = [(e.key, getattr(e, key)) for e in prof.key_averages()]
    total = sum(t for _, t in rows) or 1.0
    top = sorted(rows, key=lambda r: -r[1])[:k]
    return [(name[:60], t / total) for name, t in top], len(kernels)


def _device_batch(model, batch_size: int, device: torch.device, fast: FastPath):
    pre = model.preprocess
    source = random_reinforced_source(batch_size, batch_size, pre.image_size, num_teachers=2,
                                      teacher_dim=TEACHER_DIM, num_augs=1, num_syn=1)
    cfg = TrainConfig(num_teachers=2)
    return _prepare(as_batch(next(iter(source))), model, cfg, device, torch.Generator(), image_memory_format(fast))


def bench_variant(name: str, variant: str, args, device: torch.device) -> dict:
    _reset(device)
    fast = FastPath(**VARIANTS[variant])
    torch.manual_seed(0)
    model = create_model(MODELS[name])
    prepare_model(model, device, fast)
    torch.backends.cudnn.benchmark = variant != "plain"  # "plain" is the step before the fast path
    model.train()
    optimizer = build_optimizer(model)
    loss_fn = ReinforcedClipLoss(1.0, 2)
    autocast = _autocast(device, args.precision)
    prepared = [_device_batch(model, args.batch, device, fast)]

    def step() -> None:
        if fast.uses_cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        _train_step(model, loss_fn, prepared, autocast)
        _grad_norm(model, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.clamp_logit_scale()

    timer = Timer(device)
    first = timer.time(step, 1)  # compilation / cuDNN autotuning happen here
    timer.time(step, max(0, args.warmup - 1))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    per_step = timer.time(step, args.steps)
    peak = _peak_bytes(device)

    p = prepared[0]

    def tower(encode, x):
        def run() -> None:
            if fast.uses_cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            with autocast:
                out = encode(x)
            out.float().sum().backward()
            model.zero_grad(set_to_none=True)
        return run

    def timed_tower(encode, x) -> float | None:
        try:
            return timer.time(tower(encode, x), max(1, args.steps // 2))
        except Exception as e:  # e.g. a CUDA-graph variant refusing a forward outside the step
            print(f"{name} {variant}: tower timing failed: {e!r}", flush=True)
            return None

    image_s = timed_tower(model.encode_image, p.images)
    text_s = timed_tower(model.encode_text, p.texts)
    top, kernels = _top_kernels(step, device) if args.profile else ([], 0)
    row = {
        "model": name, "variant": variant, "batch": args.batch, "step_ms": per_step * 1e3,
        "samples_per_s": args.batch / per_step, "first_step_s": first,
        "compile_s": first - per_step if fast.compile else None,
        "peak_mb_per_sample": peak / args.batch / 2**20 if peak is not None else None,
        "image_fwd_bwd_ms": image_s * 1e3 if image_s is not None else None,
        "text_fwd_bwd_ms": text_s * 1e3 if text_s is not None else None,
        "kernels_per_step": kernels, "top_kernels": top,
    }
    return row


def bench_open_clip_vit(args, device: torch.device) -> dict:
    """open_clip ViT-B-16, random init, 224 px, one caption per image, the same optimiser step."""
    import open_clip

    _reset(device)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16", pretrained=None).to(device).train()
    optimizer = build_optimizer(model)
    loss_fn = ReinforcedClipLoss(0.0, 2)
    autocast = _autocast(device, args.precision)
    images = torch.randn(args.batch, 3, 224, 224, device=device)
    texts = torch.randint(1, 49000, (args.batch, 77), device=device)

    def step() -> None:
        with autocast:
            img = model.encode_image(images, normalize=True)
            txt = model.encode_text(texts, normalize=True)
        loss_fn(img, txt, model.logit_scale.exp()).loss.backward()
        _grad_norm(model, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    timer = Timer(device)
    timer.time(step, max(1, args.warmup))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    per_step = timer.time(step, args.steps)
    peak = _peak_bytes(device)
    top, kernels = _top_kernels(step, device) if args.profile else ([], 0)
    return {"model": "open_clip ViT-B-16 (224 px, 1 caption)", "variant": "default", "batch": args.batch,
            "step_ms": per_step * 1e3, "samples_per_s": args.batch / per_step, "first_step_s": None,
            "compile_s": None, "peak_mb_per_sample": peak / args.batch / 2**20 if peak is not None else None,
            "image_fwd_bwd_ms": None, "text_fwd_bwd_ms": None, "kernels_per_step": kernels, "top_kernels": top}


# ----------------------------------------------------------------------------- end to end
class ReferenceSource:
    """The WebDataset + DataLoader reference behind the training loop's source contract
    (it cannot resume: state_dict is empty, as WebDataset has no position)."""

    def __init__(self, tars: list[Path], batch: int, workers: int, pin_memory: bool) -> None:
        from bench_loader_throughput import reference_pipeline

        # pin_memory: the DataLoader's pinning thread, as a reference training script would use it
        self.loader = reference_pipeline(tars, batch, workers, loop=True, pin_memory=pin_memory)
        self._it = None

    def __iter__(self):
        if self._it is None:
            self._it = iter(self.loader)
        fields = ("images", "text", "image_emb", "text_emb", "syn_text", "syn_text_emb")
        for tup in self._it:
            yield dict(zip(fields, tup))

    def __len__(self) -> int:
        return 1 << 30

    def set_epoch(self, epoch: int) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def bench_end_to_end(args, device: torch.device) -> list[dict]:
    from bench_loader_throughput import build_data, shard_paths

    from mobileclip_fastload_train.data import open_store_loader

    cores = os.cpu_count() or 1
    shards = max(cores, 4)
    unique = min(args.e2e_samples, 64)
    data = args.out / f"e2e-data-{args.e2e_samples}-{shards}"
    data.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _, store = build_data(data, args.e2e_samples, shards=shards, unique=unique)
    tars = shard_paths(data, shards)
    print(f"end-to-end data: {args.e2e_samples} samples ({unique} distinct)"
          f" in {shards} shards + a DR store ({time.perf_counter() - t0:.0f}s)",
          flush=True)

    window = args.e2e_window
    rows = []
    for feed in ("in-memory", "FastReinforcedLoader", "WebDataset+DataLoader"):
        _reset(device)
        torch.manual_seed(0)
        model = create_model("MobileCLIP-S0")
        pre = model.preprocess
        if feed == "in-memory":
            source = random_reinforced_source(4 * args.batch, args.batch, pre.image_size, num_teachers=2,
                                              teacher_dim=TEACHER_DIM, num_augs=1, num_syn=1)
        elif feed == "FastReinforcedLoader":
            source = open_store_loader(str(store), args.batch, pre.image_size, pre.interpolation, pre.mean, pre.std,
                                       "both", 0.5, 0, max(1, cores - 1), "uint8", pin_memory=device.type == "cuda",
                                       prefetch=4)  # few buffers: all pinned (once each) within the warm-up window
        else:
            source = ReferenceSource(tars, args.batch, cores, pin_memory=device.type == "cuda")
        cfg = TrainConfig(steps=2 * window, warmup=1, precision=args.precision, log_every=window, progress=False,
                          num_teachers=2)
        t0 = time.perf_counter()
        result = train(cfg, model, source, DistInfo(device=device))
        wall = time.perf_counter() - t0
        steady = [r for r in result.history if r["step"] > window]
        rows.append({
            "feed": feed, "batch": args.batch, "samples_per_s": steady[-1]["samples_per_s"],
            "step_ms": steady[-1]["step_s"] * 1e3,
            "data_wait_ms_median": statistics.median(r["data_s"] for r in steady) * 1e3,
            "data_wait_ms_max": max(r["data_s"] for r in steady) * 1e3, "wall_s": wall,
        })
        print(json.dumps(rows[-1]), flush=True)
        del model, source
    return rows


# ----------------------------------------------------------------------------- output
def _fmt(v, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def _rate(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.2f}"


def tables(step_rows: list[dict], skipped: list[str], e2e_rows: list[dict], args, device_name: str) -> str:
    lines = [f"Device: {device_name}; batch {args.batch}; {args.precision}; torch {torch.__version__}.", "",
             "| model | variant | ms/step | samples/s | compile s | peak MB/sample | image fwd+bwd ms | text fwd+bwd ms | "
             + ("kernels/step | top kernels (share of device time) |" if args.device.startswith("cuda")
                else "aten ops/step | top aten ops (share of self CPU time) |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = {**{m: i for i, m in enumerate(MODELS)}, **{v: i for i, v in enumerate(VARIANTS)}}
    step_rows = sorted(step_rows, key=lambda r: (order.get(r["model"], 99), order.get(r["variant"], 99)))
    for r in step_rows:
        top = "; ".join(f"{n} {s:.0%}" for n, s in r["top_kernels"][:3])
        lines.append(f"| {r['model']} | {r['variant']} | {r['step_ms']:.1f} | {_rate(r['samples_per_s'])} | "
                     f"{_fmt(r['compile_s'], '.1f')} | {_fmt(r['peak_mb_per_sample'], '.1f')} | "
                     f"{_fmt(r['image_fwd_bwd_ms'], '.1f')} | {_fmt(r['text_fwd_bwd_ms'], '.1f')} | "
                     f"{r['kernels_per_step'] or '-'} | {top} |")
    by = {(r["model"], r["variant"]): r for r in step_rows}
    vit = next((r for r in step_rows if r["model"].startswith("open_clip")), None)
    s0 = [by[("S0", v)] for v in VARIANTS if ("S0", v) in by]
    if s0 and ("S0", "plain") in by:
        best = max(s0, key=lambda r: r["samples_per_s"])
        note = (f"\nS0 best ({best['variant']}): {_rate(best['samples_per_s'])} samples/s = "
                f"{best['samples_per_s'] / by[('S0', 'plain')]['samples_per_s']:.2f}x plain")
        if vit:
            note += f", {best['samples_per_s'] / vit['samples_per_s']:.2f}x open_clip ViT-B-16"
        lines.append(note + ".")
    if skipped:
        lines.append("Skipped: " + "; ".join(skipped) + ".")
    if e2e_rows:
        ref = e2e_rows[0]["samples_per_s"]
        lines += ["", ("| mobileclip_fastload_train.train, MobileCLIP-S0, fed by | samples/s | vs in-memory | ms/step |"
                       " data wait ms (median / max) |"),
                  "|---|---|---|---|---|"]
        for r in e2e_rows:
            lines.append(f"| {r['feed']} | {_rate(r['samples_per_s'])} | {r['samples_per_s'] / ref:.2f}x | {r['step_ms']:.0f} | "
                         f"{r['data_wait_ms_median']:.1f} / {r['data_wait_ms_max']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--precision", choices=("bf16", "fp32"), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    ap.add_argument("--models", default="S0,S1,S2,B")
    ap.add_argument("--variants", default=None, help="default: all on CUDA, plain on CPU")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-profile", dest="profile", action="store_false")
    ap.add_argument("--budget-s", type=float, default=270.0,
                    help="compiled variants (run last) are not started after this many seconds")
    ap.add_argument("--e2e-samples", type=int, default=4096, help="0 skips the end-to-end part")
    ap.add_argument("--e2e-window", type=int, default=10, help="steps per read-back window (2 windows run)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    ap.add_argument("--out", type=Path, default=Path("bench-out/train-step"))
    args = ap.parse_args()
    device = torch.device(args.device)
    args.precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    cuda = device.type == "cuda"
    variants = args.variants.split(",") if args.variants else (list(VARIANTS) if cuda else ["plain"])
    device_name = torch.cuda.get_device_name(device) if cuda else f"CPU ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"
    start = time.perf_counter()

    models = args.models.split(",")
    eager = [(m, v) for v in variants if not VARIANTS[v].get("compile") for m in models]
    compiled = [(m, v) for m in models for v in variants if VARIANTS[v].get("compile")]
    rows, skipped = [], []

    def run(m: str, v: str) -> None:
        if v == "cudagraphs" and not cuda:
            skipped.append(f"{m} {v} (needs CUDA)")
            return
        try:
            rows.append(bench_variant(m, v, args, device))
            print(json.dumps(rows[-1]), flush=True)
        except Exception as e:  # one failing variant must not lose the table
            skipped.append(f"{m} {v} (failed: {type(e).__name__}: {str(e)[:120]})")
            print(f"{m} {v} failed: {e!r}", flush=True)

    # Everything with a predictable duration first; compilation last, within the budget.
    for m, v in eager:
        run(m, v)
    rows.append(bench_open_clip_vit(args, device))
    print(json.dumps(rows[-1]), flush=True)
    e2e = bench_end_to_end(args, device) if args.e2e_samples else []
    for m, v in compiled:
        if time.perf_counter() - start > args.budget_s:
            skipped.append(f"{m} {v} (time budget of {args.budget_s:.0f}s spent)")
        else:
            run(m, v)
    text = tables(rows, skipped, e2e, args, device_name)
    text += f"\n\nTotal bench time {time.perf_counter() - start:.0f}s. Command: python {' '.join(sys.argv)}"
    print(text)
    (args.out / "bench_train_step.md").write_text(text + "\n")
    (args.out / "bench_train_step.json").write_text(json.dumps({"steps": rows, "end_to_end": e2e, "skipped": skipped}, indent=1))


if __name__ == "__main__":
    main()
