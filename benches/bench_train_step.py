"""Training-step speed: MobileCLIP S0/S1/S2/B per step variant, open_clip ViT-B-16 for
comparison, and the training loop end to end fed by three data pipelines.

    python benches/bench_train_step.py                       # on a GPU: the whole table
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

Runs go in the order the GPU targets need them (``--runs``; default on CUDA: S0 channels_last,
compiled, cudagraphs, ViT-B-16, the end-to-end loop, then S0 plain and S2 / B once each);
``--models`` / ``--variants`` keep only some of them; no run starts once ``--budget-s`` is spent.
The batch of each model is ``--batch`` unless its estimated step memory (``mobileclip_fastload_train.memory``,
measured on the device at batches 2 and 4) does not fit the device, then the largest multiple
of 32 that does (``--no-fit-batch``: always ``--batch``); a run that still runs out of memory is
retried once at half the batch. The table states batch, estimate and measured peak.

Accounting: top kernels are the device's kernel events only (each kernel once, not also its
aten op); the in-memory feed hands the loop page-locked batches (an upper bound for the pinned
loader); tower timings start after warm-up calls (CUDA-graph recording is not timed).

On the CPU, channels_last and the compiled variants are skipped: channels_last backward
through MCi's stem aborts in oneDNN (issue 6035, see python/mobileclip_fastload_train/step.py), and inductor's C++
compilation of even the tiny model takes ~12 minutes on a 2-core machine.
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
from mobileclip_fastload_train.memory import measure_step_memory  # noqa: E402
from mobileclip_fastload_train.models import create_model  # noqa: E402
from mobileclip_fastload_train.optim import build_optimizer  # noqa: E402
from mobileclip_fastload_train.step import FastPath, image_memory_format, prepare_model  # noqa: E402
from mobileclip_fastload_train.train import TrainConfig, _grad_norm, _prepare, _train_step, train  # noqa: E402

MODELS = {
    "S0": "MobileCLIP-S0",
    "S1": "MobileCLIP-S1",
    "S2": "MobileCLIP-S2",
    "B": "MobileCLIP-B",
    **{f"v2-{v}": f"MobileCLIP2-{v}" for v in ("S0", "S2", "B", "S3", "S4", "L-14")},
}  # --models v2-S0,...
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


def kernel_shares(events, cuda: bool, k: int = 5) -> tuple[list[tuple[str, float]], int]:
    """Top-k by share of time, and how many: on CUDA the device's kernel events only (an aten
    op's device time is its kernels' time again, so counting both would count each kernel
    twice); on the CPU the aten ops' self time."""
    if cuda:
        kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        timed = [(e.name, e.time_range.elapsed_us()) for e in kernels]
    else:
        kernels = [e for e in events if e.name.startswith("aten::")]
        timed = [(e.name, e.self_cpu_time_total) for e in kernels]
    totals: dict[str, float] = {}
    for name, t in timed:
        totals[name] = totals.get(name, 0.0) + t
    total = sum(totals.values()) or 1.0
    top = sorted(totals.items(), key=lambda r: -r[1])[:k]
    return [(name[:60], t / total) for name, t in top], len(kernels)


def _top_kernels(step, device: torch.device, k: int = 5) -> tuple[list[tuple[str, float]], int]:
    """Profile one step: top-k kernels (aten ops on a CPU) by time share, and their count."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        step()
        Timer(device).sync()
    return kernel_shares(prof.events(), device.type == "cuda", k)


def _device_batch(model, batch_size: int, device: torch.device, fast: FastPath):
    pre = model.preprocess
    source = random_reinforced_source(
        batch_size, batch_size, pre.image_size, num_teachers=2, teacher_dim=TEACHER_DIM, num_augs=1, num_syn=1
    )
    cfg = TrainConfig(num_teachers=2)
    return _prepare(as_batch(next(iter(source))), model, cfg, device, torch.Generator(), image_memory_format(fast))


def bench_variant(name: str, variant: str, args, device: torch.device, batch: int) -> dict:
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
    prepared = [_device_batch(model, batch, device, fast)]

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
            run = tower(encode, x)
            timer.time(run, 3 if fast.compile else 1)  # warm-up: the tower's own compilation, CUDA-graph recording
            return timer.time(run, max(1, args.steps // 2))
        except Exception as e:  # e.g. a CUDA-graph variant refusing a forward outside the step
            print(f"{name} {variant}: tower timing failed: {e!r}", flush=True)
            return None

    image_s = timed_tower(model.encode_image, p.images)
    text_s = timed_tower(model.encode_text, p.texts)
    top, kernels = _top_kernels(step, device) if args.profile else ([], 0)
    row = {
        "model": name,
        "variant": variant,
        "batch": batch,
        "step_ms": per_step * 1e3,
        "samples_per_s": batch / per_step,
        "first_step_s": first,
        "compile_s": first - per_step if fast.compile else None,
        "peak_mb_per_sample": peak / batch / 2**20 if peak is not None else None,
        "peak_gib": peak / 2**30 if peak is not None else None,
        "image_fwd_bwd_ms": image_s * 1e3 if image_s is not None else None,
        "text_fwd_bwd_ms": text_s * 1e3 if text_s is not None else None,
        "kernels_per_step": kernels,
        "top_kernels": top,
    }
    return row


def _open_clip_vit(device: torch.device):
    import open_clip

    torch.manual_seed(0)
    return open_clip.create_model("ViT-B-16", pretrained=None).to(device).train()


def bench_open_clip_vit(args, device: torch.device, batch: int) -> dict:
    """open_clip ViT-B-16, random init, 224 px, one caption per image, the same optimiser step."""
    _reset(device)
    torch.backends.cudnn.benchmark = True
    model = _open_clip_vit(device)
    optimizer = build_optimizer(model)
    loss_fn = ReinforcedClipLoss(0.0, 2)
    autocast = _autocast(device, args.precision)
    images = torch.randn(batch, 3, 224, 224, device=device)
    texts = torch.randint(1, 49000, (batch, 77), device=device)

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
    return {
        "model": "open_clip ViT-B-16 (224 px, 1 caption)",
        "variant": "default",
        "batch": batch,
        "step_ms": per_step * 1e3,
        "samples_per_s": batch / per_step,
        "first_step_s": None,
        "compile_s": None,
        "peak_mb_per_sample": peak / batch / 2**20 if peak is not None else None,
        "peak_gib": peak / 2**30 if peak is not None else None,
        "image_fwd_bwd_ms": None,
        "text_fwd_bwd_ms": None,
        "kernels_per_step": kernels,
        "top_kernels": top,
    }


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


class PinnedBatches:
    """A few batches made once and page-locked (on CUDA), delivered again and again: the loop's
    upper bound, fed as the pinned loader feeds it but with no work per batch (the in-memory
    source itself gathers pageable tensors for every batch)."""

    def __init__(self, source, count: int, pin: bool) -> None:
        batches = []
        for b in source:
            batches.append(
                {k: v.pin_memory() if pin and isinstance(v, torch.Tensor) else v for k, v in b.items()}
                if isinstance(b, dict)
                else b
            )
            if len(batches) == count:
                break
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def bench_end_to_end(args, device: torch.device, batch: int) -> list[dict]:
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
    print(
        f"end-to-end data: {args.e2e_samples} samples ({unique} distinct)"
        f" in {shards} shards + a DR store ({time.perf_counter() - t0:.0f}s)",
        flush=True,
    )

    window = args.e2e_window
    rows = []
    for feed in ("in-memory", "FastReinforcedLoader", "WebDataset+DataLoader"):
        _reset(device)
        torch.manual_seed(0)
        model = create_model("MobileCLIP-S0")
        pre = model.preprocess
        if feed == "in-memory":
            source = PinnedBatches(
                random_reinforced_source(
                    4 * batch, batch, pre.image_size, num_teachers=2, teacher_dim=TEACHER_DIM, num_augs=1, num_syn=1
                ),
                4,
                pin=device.type == "cuda",
            )
        elif feed == "FastReinforcedLoader":
            source = open_store_loader(
                str(store),
                batch,
                pre.image_size,
                pre.interpolation,
                pre.mean,
                pre.std,
                "both",
                0.5,
                0,
                max(1, cores - 1),
                "uint8",
                pin_memory=device.type == "cuda",
                prefetch=4,
            )  # few buffers: all pinned (once each) within the warm-up window
        else:
            source = ReferenceSource(tars, batch, cores, pin_memory=device.type == "cuda")
        cfg = TrainConfig(
            steps=2 * window, warmup=1, precision=args.precision, log_every=window, progress=False, num_teachers=2
        )
        t0 = time.perf_counter()
        result = train(cfg, model, source, DistInfo(device=device))
        wall = time.perf_counter() - t0
        steady = [r for r in result.history if r["step"] > window]
        rows.append(
            {
                "feed": feed,
                "batch": batch,
                "samples_per_s": steady[-1]["samples_per_s"],
                "step_ms": steady[-1]["step_s"] * 1e3,
                "data_wait_ms_median": statistics.median(r["data_s"] for r in steady) * 1e3,
                "data_wait_ms_max": max(r["data_s"] for r in steady) * 1e3,
                "wall_s": wall,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        del model, source
    return rows


# ----------------------------------------------------------------------------- output
def _fmt(v, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def _rate(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.2f}"


def tables(
    step_rows: list[dict], skipped: list[str], e2e_rows: list[dict], args, device_name: str, memory: dict[str, dict]
) -> str:
    cuda = args.device.startswith("cuda")
    lines = [
        f"Device: {device_name}; {args.precision}; torch {torch.__version__}.",
        "",
        "| model | variant | batch | ms/step | samples/s | compile s | peak MB/sample | peak GiB | "
        "image fwd+bwd ms | text fwd+bwd ms | "
        + (
            "kernels/step | top kernels (share of kernel time) |"
            if cuda
            else "aten ops/step | top aten ops (share of self CPU time) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {**{m: i for i, m in enumerate(MODELS)}, **{v: i for i, v in enumerate(VARIANTS)}}
    step_rows = sorted(step_rows, key=lambda r: (order.get(r["model"], 99), order.get(r["variant"], 99)))
    for r in step_rows:
        top = "; ".join(f"{n} {s:.0%}" for n, s in r["top_kernels"][:3])
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['batch']} | {r['step_ms']:.1f} | "
            f"{_rate(r['samples_per_s'])} | {_fmt(r['compile_s'], '.1f')} | "
            f"{_fmt(r['peak_mb_per_sample'], '.1f')} | {_fmt(r.get('peak_gib'), '.1f')} | "
            f"{_fmt(r['image_fwd_bwd_ms'], '.1f')} | {_fmt(r['text_fwd_bwd_ms'], '.1f')} | "
            f"{r['kernels_per_step'] or '-'} | {top} |"
        )
    by = {(r["model"], r["variant"]): r for r in step_rows}
    vit = next((r for r in step_rows if r["model"].startswith("open_clip")), None)
    s0 = [by[("S0", v)] for v in VARIANTS if ("S0", v) in by]
    if s0:
        best = max(s0, key=lambda r: r["samples_per_s"])
        note = f"\nS0 best ({best['variant']}): {_rate(best['samples_per_s'])} samples/s"
        if ("S0", "plain") in by:
            note += f" = {best['samples_per_s'] / by[('S0', 'plain')]['samples_per_s']:.2f}x plain"
        if vit:
            note += f", {best['samples_per_s'] / vit['samples_per_s']:.2f}x open_clip ViT-B-16"
        lines.append(note + ".")
    if memory:
        lines += [
            "",
            "| model | estimated step GiB at --batch | batch chosen | estimated GiB at it | budget GiB |",
            "|---|---|---|---|---|",
        ]
        for name, m in memory.items():
            lines.append(
                f"| {name} | {m['estimate_gib_at_requested']:.1f} (batch {m['requested']}) | {m['batch']} | "
                f"{m['estimate_gib']:.1f} | {_fmt(m['budget_gib'], '.1f')} |"
            )
        lines.append(
            "Estimate: mobileclip_fastload_train.memory (16 B/parameter + saved activations measured at batches 2 "
            "and 4, extrapolated); chosen with x1.25 headroom. Compare with the measured peak GiB above."
        )
    if skipped:
        lines.append("Skipped: " + "; ".join(skipped) + ".")
    if e2e_rows:
        ref = e2e_rows[0]["samples_per_s"]
        lines += [
            "",
            (
                "| mobileclip_fastload_train.train, MobileCLIP-S0, fed by | batch | samples/s | vs in-memory (pinned) "
                "| ms/step | data wait ms (median / max) |"
            ),
            "|---|---|---|---|---|---|",
        ]
        for r in e2e_rows:
            lines.append(
                f"| {r['feed']} | {r['batch']} | {_rate(r['samples_per_s'])} | "
                f"{r['samples_per_s'] / ref:.2f}x | {r['step_ms']:.0f} | "
                f"{r['data_wait_ms_median']:.1f} / {r['data_wait_ms_max']:.1f} |"
            )
    return "\n".join(lines)


VIT = "vit"  # open_clip ViT-B-16 in --runs
E2E = "e2e"  # the end-to-end loop in --runs
CUDA_RUNS = "S0:channels_last,S0:compiled,S0:cudagraphs,vit,e2e,S0:plain,S2:channels_last,B:channels_last"
CPU_RUNS = "S0:plain,vit,e2e"


def parse_runs(text: str, models: str | None, variants: str | None) -> list[tuple[str, str | None]]:
    """``MODEL:VARIANT``, ``vit`` and ``e2e`` items in order; ``models`` / ``variants`` (comma
    lists) keep only the runs of those models (``vit`` and ``e2e`` count as models) / variants."""
    runs: list[tuple[str, str | None]] = []
    for item in filter(None, text.split(",")):
        model, _, variant = item.partition(":")
        if model in (VIT, E2E):
            runs.append((model, None))
            continue
        if model not in MODELS or variant not in VARIANTS:
            raise SystemExit(
                f"--runs: {item!r} is not MODEL:VARIANT (models {list(MODELS)}, variants "
                f"{list(VARIANTS)}), {VIT!r} or {E2E!r}"
            )
        runs.append((model, variant))
    keep_models = set(models.split(",")) if models else None
    keep_variants = set(variants.split(",")) if variants else None
    return [
        (m, v)
        for m, v in runs
        if (keep_models is None or m in keep_models) and (keep_variants is None or v is None or v in keep_variants)
    ]


def choose_batch(name: str, args, device: torch.device, memory: dict[str, dict]) -> int:
    """``args.batch``, or the largest batch whose estimated step memory fits the device."""
    if name in memory:
        return memory[name]["batch"]
    budget = (
        args.memory_budget_gib * 2**30
        if args.memory_budget_gib
        else (torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else None)
    )
    if not args.fit_batch or budget is None:
        return args.batch
    _reset(device)
    if name == VIT:
        model, size, captions, context = _open_clip_vit(device), 224, 1, 77
    else:
        torch.manual_seed(0)
        model = create_model(MODELS[name]).to(device)
        pre = model.preprocess
        size, captions, context = pre.image_size, 2, pre.context_length
    estimate = measure_step_memory(model, size, captions, args.precision, context, device)
    del model
    batch = estimate.largest_batch(int(budget), args.batch)
    memory[name] = {
        "requested": args.batch,
        "batch": batch,
        "budget_gib": budget / 2**30,
        "estimate_gib_at_requested": estimate.at(args.batch) / 2**30,
        "estimate_gib": estimate.at(batch) / 2**30,
        "estimate": vars(estimate),
    }
    print(f"memory {name}: {json.dumps(memory[name])}", flush=True)
    return batch


def with_oom_retry(what: str, run, batch: int, skipped: list[str]):
    """``run(batch)``; on running out of device memory once more at half the batch."""
    try:
        return run(batch)
    except torch.OutOfMemoryError:
        _reset(torch.device("cuda"))
        skipped.append(f"{what} at batch {batch} (out of memory; ran at {batch // 2})")
        return run(batch // 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=256, help="per model unless it does not fit (see --no-fit-batch)")
    ap.add_argument(
        "--no-fit-batch",
        dest="fit_batch",
        action="store_false",
        help="always --batch, even where the memory estimate says it does not fit",
    )
    ap.add_argument(
        "--memory-budget-gib",
        type=float,
        default=None,
        help="device memory the batch must fit in (default: the GPU's; on the CPU: no fitting)",
    )
    ap.add_argument("--precision", choices=("bf16", "fp32"), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    ap.add_argument("--runs", default=None, help=f"in order (default on CUDA: {CUDA_RUNS}; on the CPU: {CPU_RUNS})")
    ap.add_argument("--models", default=None, help="keep only these models' runs (e.g. S0,vit,e2e)")
    ap.add_argument("--variants", default=None, help=f"keep only these variants ({','.join(VARIANTS)})")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-profile", dest="profile", action="store_false")
    ap.add_argument("--budget-s", type=float, default=330.0, help="no run starts after this many seconds")
    ap.add_argument("--e2e-samples", type=int, default=4096)
    ap.add_argument("--e2e-window", type=int, default=10, help="steps per read-back window (2 windows run)")
    ap.add_argument("--num-threads", type=int, default=None, help="torch intra-op threads (CPU)")
    ap.add_argument("--out", type=Path, default=Path("bench-out/train-step"))
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    args.precision = args.precision or ("bf16" if cuda else "fp32")
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = parse_runs(args.runs or (CUDA_RUNS if cuda else CPU_RUNS), args.models, args.variants)
    device_name = (
        torch.cuda.get_device_name(device)
        if cuda
        else f"CPU ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"
    )
    start = time.perf_counter()
    rows: list[dict] = []
    e2e: list[dict] = []
    skipped: list[str] = []
    memory: dict[str, dict] = {}

    def run(m: str, v: str | None) -> None:
        what = m if v is None else f"{m} {v}"
        if v == "cudagraphs" and not cuda:
            skipped.append(f"{what} (needs CUDA)")
            return
        try:
            batch = choose_batch("S0" if m == E2E else m, args, device, memory)
            if batch == 0:
                skipped.append(f"{what} (not even a batch of 32 fits, by the estimate)")
            elif m == E2E:
                if args.e2e_samples:
                    e2e.extend(with_oom_retry(what, lambda b: bench_end_to_end(args, device, b), batch, skipped))
            elif m == VIT:
                rows.append(with_oom_retry(what, lambda b: bench_open_clip_vit(args, device, b), batch, skipped))
                print(json.dumps(rows[-1]), flush=True)
            else:
                rows.append(with_oom_retry(what, lambda b: bench_variant(m, v, args, device, b), batch, skipped))
                print(json.dumps(rows[-1]), flush=True)
        except Exception as e:  # one failing run must not lose the table
            skipped.append(f"{what} (failed: {type(e).__name__}: {str(e)[:160]})")
            print(f"{what} failed: {e!r}", flush=True)

    for m, v in runs:
        if time.perf_counter() - start > args.budget_s:
            skipped.append(f"{m if v is None else f'{m} {v}'} (time budget of {args.budget_s:.0f}s spent)")
        else:
            run(m, v)
    text = tables(rows, skipped, e2e, args, device_name, memory)
    text += f"\n\nTotal bench time {time.perf_counter() - start:.0f}s. Command: python {' '.join(sys.argv)}"
    print(text)
    (args.out / "bench_train_step.md").write_text(text + "\n")
    (args.out / "bench_train_step.json").write_text(
        json.dumps(
            {
                "device": device_name,
                "precision": args.precision,
                "runs": [list(r) for r in runs],
                "steps": rows,
                "end_to_end": e2e,
                "memory": memory,
                "skipped": skipped,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
