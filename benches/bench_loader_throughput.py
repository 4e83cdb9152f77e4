"""Loader throughput, side by side in one run on the same samples.

(a) reference: WebDataset tar + Pillow decode + torchvision replay + npz
    embedding load + open_clip tokenisation, torch DataLoader with N workers
    (what a MobileCLIP DR training script runs today);
(b) FastReinforcedLoader with N threads;
(c) decode-only bounds on the same JPEGs: Pillow, and libjpeg-turbo through
    this package's decoder (single thread = per core);
(d) NVIDIA DALI's CPU pipeline (decoders.image_random_crop + resize), if installed.

Every configuration runs in a fresh subprocess so that peak RSS (the process
tree, sampled) and time to first batch are its own.

    python benches/bench_loader_throughput.py --samples 600 --out bench-out
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np

IMAGE_SIZE = 256
J, S, K, D = 30, 5, 2, 768


# ----------------------------------------------------------------------------- data
def build_data(out: Path, n: int, seed: int = 0, shards: int = 1, unique: int | None = None,
               min_side: int = 384, max_side: int = 512) -> tuple[Path, Path]:
    """The same n samples (JPEG sides in [min_side, max_side]) as DataCompDR-style joined tars
    (``shards`` of them, consecutive samples, ``shard-00000.tar`` ...) and as a DR store;
    returns (first tar, store). ``unique``: draw only that many images, augmentations and
    embeddings and cycle through them (drawing is slow; the loaders do the same work per
    sample either way)."""
    from mobileclip_fastload.store import Sample, StoreWriter, aug_records
    from mobileclip_fastload.testing.datacompdr import normalised_embeddings as unit_rows
    from mobileclip_fastload.testing.synthetic_store import photo_jpeg, random_aug_records
    from mobileclip_fastload.tokenizer import tokenize

    tar_paths = shard_paths(out, shards)
    tar_path, store_path = tar_paths[0], out / "store"
    if all(t.exists() for t in tar_paths) and (store_path / "manifest.json").exists():
        return tar_path, store_path
    rng = np.random.default_rng(seed)
    per_shard = -(-n // shards)
    drawn: list[tuple] = []
    tars = [tarfile.open(t, "w") for t in tar_paths]
    with contextlib.ExitStack() as stack, StoreWriter(store_path, J=J, S=S, K=K, D=D) as writer:
        for t in tars:
            stack.enter_context(t)

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tars[i // per_shard].addfile(info, io.BytesIO(data))

        for i in range(n):
            key = f"{i:08d}"
            if unique is None or len(drawn) < unique:
                jpeg, w, h = photo_jpeg(rng, min_side=min_side, max_side=max_side)
                recs = random_aug_records(rng, J, w, h)
                param_aug = [
                    None
                    if r["flags"] & 1
                    else [[int(r["top"]), int(r["left"]), int(r["height"]), int(r["width"])],
                          [[int(r[f"op{k}"]), float(r[f"m{k}"])] for k in range(int(r["n_ops"]))]]
                    for r in recs
                ]
                image_emb, text_emb = unit_rows(rng, J, K, D), unit_rows(rng, 1 + S, K, D)
                if unique is not None:
                    drawn.append((jpeg, w, h, param_aug, image_emb, text_emb))
            else:
                jpeg, w, h, param_aug, image_emb, text_emb = drawn[i % unique]
            caption = f"a photo of thing number {i} on a table"
            syn = [f"synthetic caption {s} describing photo {i}" for s in range(S)]
            npz = io.BytesIO()
            np.savez(npz, image_emb=image_emb, text_emb=text_emb)
            add(f"{key}.jpg", jpeg)
            add(f"{key}.txt", caption.encode())
            add(f"{key}.syn.json", json.dumps({"syn_text": syn}).encode())
            add(f"{key}.paug.json", json.dumps({"param_aug": param_aug}).encode())
            add(f"{key}.npz", npz.getvalue())
            add(f"{key}.json", json.dumps({"uid": key}).encode())
            writer.add(
                Sample(
                    uid=key, image=jpeg, width=w, height=h, orig_width=w, orig_height=h,
                    caption=caption, caption_tokens=tokenize(caption),
                    syn_captions=syn, syn_tokens=[tokenize(t) for t in syn],
                    aug=aug_records(param_aug, width=w, height=h)[0], image_emb=image_emb, text_emb=text_emb,
                    sha256=None, flags=0,
                )
            )
    return tar_path, store_path


def shard_paths(out: Path, shards: int) -> list[Path]:
    return [out / f"shard-{k:05d}.tar" for k in range(shards)]


# ----------------------------------------------------------------------------- runners
def reference_pipeline(tars: list[Path], batch: int, workers: int, loop: bool = False, pin_memory: bool = False):
    """What users run today: WebDataset + Pillow + torchvision replay + npz + open_clip tokenizer,
    batched; a ``DataLoader`` over it with ``workers`` processes yields 6-tuples
    ``(image, text, image_emb, text_emb, syn_text, syn_text_emb)``. Shards are split across
    workers when there are enough of them, else samples are; ``loop`` repeats forever."""
    import torch
    import torchvision.transforms.functional as TF
    import webdataset as wds
    from open_clip import get_tokenizer

    from mobileclip_fastload.loader import TRAINING_INTERPOLATION
    from mobileclip_fastload.reference import reference_replay

    tokenizer = get_tokenizer("ViT-B-16")

    def replay(sample):
        rng = random.Random()
        j = rng.randrange(J)
        s = rng.randrange(S)
        params = json.loads(sample["paug.json"])["param_aug"][j]
        img = reference_replay(sample["jpg"], params, IMAGE_SIZE, TRAINING_INTERPOLATION)  # as the loader's default
        image = TF.to_tensor(img)
        image = TF.normalize(image, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        emb = np.load(io.BytesIO(sample["npz"]))
        syn = json.loads(sample["syn.json"])["syn_text"]
        text = tokenizer([sample["txt"].decode()])[0]
        syn_text = tokenizer([syn[s]])[0]
        return (image, text, torch.from_numpy(emb["image_emb"][j]).half(), torch.from_numpy(emb["text_emb"][0]).half(),
                syn_text, torch.from_numpy(emb["text_emb"][1 + s]).half())

    by_shard = len(tars) >= max(1, workers)
    shards = wds.ResampledShards([str(t) for t in tars]) if loop else wds.SimpleShardList([str(t) for t in tars])
    ds = wds.DataPipeline(
        shards,
        *([wds.split_by_worker] if by_shard and not loop else []),
        wds.tarfile_to_samples(),
        *([] if by_shard else [_worker_slice]),  # few shards: each worker decodes a disjoint part of them
        wds.map(replay),
        wds.batched(batch),
    )
    return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, persistent_workers=workers > 0,
                                       pin_memory=pin_memory)


def run_reference(tar: Path, workers: int, batch: int) -> tuple[int, float, float]:
    import open_clip  # noqa: F401  (imports are not timed)
    import webdataset  # noqa: F401

    t0 = time.perf_counter()
    return _drain(reference_pipeline([tar], batch, workers), t0)


def _worker_slice(samples):
    import torch

    info = torch.utils.data.get_worker_info()
    wid, nw = (info.id, info.num_workers) if info else (0, 1)
    for k, s in enumerate(samples):
        if k % nw == wid:
            yield s


def run_fast(store: Path, threads: int, batch: int) -> tuple[int, float, float]:
    from mobileclip_fastload import FastReinforcedLoader

    t0 = time.perf_counter()
    loader = FastReinforcedLoader(store, batch, image_size=IMAGE_SIZE, num_threads=threads, seed=0)
    return _drain(loader, t0)


def run_fast_uint8(store: Path, threads: int, batch: int) -> tuple[int, float, float]:
    """Same, with uint8 images (normalisation left to the GPU, 4x less to copy to it)."""
    from mobileclip_fastload import FastReinforcedLoader

    t0 = time.perf_counter()
    loader = FastReinforcedLoader(store, batch, image_size=IMAGE_SIZE, num_threads=threads, seed=0, output="uint8")
    return _drain(loader, t0)


def _drain(loader, t0: float) -> tuple[int, float, float]:
    """Iterate one epoch; (samples, time to first batch, total time), both from `t0`
    (just before the loader is built: imports are not counted)."""
    first = None
    n = 0
    for b in loader:
        n += len(b[0])
        if first is None:
            first = time.perf_counter() - t0
    return n, first or 0.0, time.perf_counter() - t0


def _jpegs(tar: Path) -> list[bytes]:
    with tarfile.open(tar) as t:
        return [t.extractfile(m).read() for m in t.getmembers() if m.name.endswith(".jpg")]


def run_pillow_decode(tar: Path, *_args) -> tuple[int, float, float]:
    from PIL import Image

    jpegs = _jpegs(tar)
    t0 = time.perf_counter()
    for data in jpegs:
        Image.open(io.BytesIO(data)).convert("RGB").load()
    return len(jpegs), 0.0, time.perf_counter() - t0


def run_turbo_decode(tar: Path, *_args) -> tuple[int, float, float]:
    from mobileclip_fastload._core import decode_rgb

    jpegs = _jpegs(tar)
    t0 = time.perf_counter()
    for data in jpegs:
        decode_rgb(data)
    return len(jpegs), 0.0, time.perf_counter() - t0


def run_dali(tar: Path, threads: int, batch: int) -> tuple[int, float, float]:
    from nvidia.dali import fn, pipeline_def, types

    jpegs = [np.frombuffer(b, dtype=np.uint8) for b in _jpegs(tar)]
    n_batches = len(jpegs) // batch

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=None, prefetch_queue_depth=2)
    def pipe():
        data = fn.external_source(source=lambda info: [jpegs[(info.iteration * batch + k) % len(jpegs)] for k in range(batch)],
                                  batch=True, batch_info=True)
        img = fn.decoders.image_random_crop(data, device="cpu", output_type=types.RGB)
        return fn.resize(img, resize_x=IMAGE_SIZE, resize_y=IMAGE_SIZE)

    t0 = time.perf_counter()
    p = pipe()
    p.build()
    p.run()
    first = time.perf_counter() - t0
    for _ in range(n_batches - 1):
        p.run()
    return n_batches * batch, first, time.perf_counter() - t0


RUNNERS = {"reference": run_reference, "fast": run_fast, "fast-uint8": run_fast_uint8, "pillow-decode": run_pillow_decode,
           "turbo-decode": run_turbo_decode, "dali-cpu": run_dali}


def _vm_hwm_bytes() -> int:
    """This process's exact peak RSS (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def run_one(kind: str, data: Path, parallel: int, batch: int) -> dict:
    """Run one configuration; peak RSS = max(own VmHWM, sampled own + children RSS)."""
    import psutil

    proc = psutil.Process()
    peak = [0]
    done = threading.Event()

    def sample_rss():
        # Cheap polling: the child list (DataLoader workers) is refreshed rarely,
        # since finding children scans every process on the machine.
        children, refreshed = [], 0.0
        while not done.is_set():
            now = time.perf_counter()
            if now - refreshed > 0.5:
                children, refreshed = proc.children(recursive=True), now
            rss = proc.memory_info().rss
            for c in children:
                try:
                    rss += c.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    src = data / "store" if kind.startswith("fast") else data / "shard-00000.tar"
    n, first, elapsed = RUNNERS[kind](src, parallel, batch)  # each runner times itself, imports excluded
    done.set()
    sampler.join()
    peak_bytes = max(peak[0], _vm_hwm_bytes())
    return {"kind": kind, "parallel": parallel, "samples": n, "seconds": elapsed, "samples_per_s": n / elapsed,
            "time_to_first_batch_s": first, "peak_rss_mb": peak_bytes / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--run-one", nargs=2, metavar=("KIND", "PARALLEL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    data = args.out / "loader-data"
    if args.run_one:
        print(json.dumps(run_one(args.run_one[0], data, int(args.run_one[1]), args.batch)))
        return
    data.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    build_data(data, args.samples)
    print(f"data: {args.samples} samples (~512 px JPEG q70-95, J={J} S={S} K={K} D={D}) built in {time.perf_counter() - t0:.0f}s")
    plan = [("reference", 1), ("reference", 2), ("fast", 1), ("fast", 2), ("fast-uint8", 1), ("fast-uint8", 2),
            ("pillow-decode", 1), ("turbo-decode", 1)]
    try:
        import nvidia.dali  # noqa: F401

        plan += [("dali-cpu", 1), ("dali-cpu", 2)]
    except ImportError:
        print("NVIDIA DALI not installed: skipping (d)")
    rows = []
    for kind, par in plan:
        cmd = [sys.executable, __file__, "--out", str(args.out), "--batch", str(args.batch), "--run-one", kind, str(par)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"{kind} x{par} failed:\n{res.stderr[-2000:]}")
            continue
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{kind:>14} x{par}: {r['samples_per_s']:8.1f} samples/s  first batch {r['time_to_first_batch_s']:.3f}s  peak RSS {r['peak_rss_mb']:.0f} MB")
    by = {(r["kind"], r["parallel"]): r for r in rows}
    lines = ["| pipeline | workers/threads | samples/s | vs reference (same N) | time to first batch (s) | peak RSS (MB) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ref = by.get(("reference", r["parallel"]))
        ratio = f"{r['samples_per_s'] / ref['samples_per_s']:.2f}x" if ref else "-"
        lines.append(f"| {r['kind']} | {r['parallel']} | {r['samples_per_s']:.0f} | {ratio} | {r['time_to_first_batch_s']:.3f} | {r['peak_rss_mb']:.0f} |")
    if ("fast", 1) in by and ("fast", 2) in by:
        lines.append(f"\nFastReinforcedLoader 1 -> 2 thread scaling: {by[('fast', 2)]['samples_per_s'] / by[('fast', 1)]['samples_per_s']:.2f}x")
    table = "\n".join(lines)
    print(table)
    (args.out / "bench_loader_throughput.md").write_text(table + "\n")
    (args.out / "bench_loader_throughput.json").write_text(json.dumps(rows, indent=1))
    _plot(rows, args.out / "bench_loader_throughput.png")


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [f"{r['kind'].replace('-', chr(10))}\nx{r['parallel']}" for r in rows]
    ax.bar(labels, [r["samples_per_s"] for r in rows], color=["#d62728" if r["kind"].startswith("fast") else "#888" for r in rows])
    ax.tick_params(axis="x", labelsize=8)
    ax.set_ylabel("samples / s")
    ax.set_title(f"Reinforced-sample loading, {IMAGE_SIZE}px output, {os.cpu_count()} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
