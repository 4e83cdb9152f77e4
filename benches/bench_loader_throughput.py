"""Loader throughput, side by side in one run on the same samples.

(a) reference: what a MobileCLIP DR training script runs today, built as
    open_clip's WebDataset pipeline builds it (``open_clip_train.data.get_wds_dataset``
    with Apple's dataset-reinforcement patch): many tar shards, the shard list
    shuffled (``detshuffle2``) and split by node and by DataLoader worker, so that
    each worker reads its own group of shards; tar -> samples, open_clip's sample
    shuffle buffer (5000, 1000 initial); per sample Pillow decode + torchvision replay
    of one stored augmentation (``mobileclip_fastload.reference.reference_replay``,
    the pixels the loader must equal), npz embedding rows, open_clip tokenisation of
    the caption and one synthetic caption; batched in the workers; a DataLoader with
    N workers. Pillow from this interpreter;
(a') the same reference under each ``--pil-variant NAME=DIR`` (default:
    pillow-simd, the fast Pillow fork, in ``OUT/pillow-simd``): DIR is a
    ``pip install --target`` directory put first on the PYTHONPATH of that
    configuration's subprocess, so its ``PIL`` shadows Pillow there (the two cannot
    share one environment). Missing: the bench says how to get it and skips it
    (``--install-pillow-simd`` builds it there);
(b) FastReinforcedLoader with N threads, float32 and uint8 output;
(c) decode-only bounds on the same JPEGs: Pillow, and libjpeg-turbo through
    this package's decoder (single thread = per core);
(d) NVIDIA DALI's CPU pipeline (decoders.image_random_crop + resize), if installed;
(e) pixels: the first ``--pixel-samples`` images the loader yields (uint8) against
    the reference replay of the same stored augmentation under Pillow and under each
    variant: max |difference|, fraction of differing values, mean |difference|.

Every configuration runs in a fresh subprocess so that peak RSS (the process
tree, sampled), time to first batch and CPU time (the process and its reaped
DataLoader workers: steadier than wall time where the cores are shared) are its
own; ``--repeats R`` runs every configuration once per round, R rounds, and
reports medians and per-round ratios.

    python benches/bench_loader_throughput.py --samples 600 --out bench-out [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import pickle
import random
import resource
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np

IMAGE_SIZE = 256
J, S, K, D = 30, 5, 2, 768
# Newest pillow-simd release (a source distribution) found to build here (CPython 3.11, GCC 12,
# Debian's libjpeg62-turbo-dev and zlib1g-dev); CC="cc -mavx2" turns on its AVX2 paths.
PILLOW_SIMD = "pillow-simd==12.1.1.post0"


# ----------------------------------------------------------------------------- data
def build_data(
    out: Path,
    n: int,
    seed: int = 0,
    shards: int = 1,
    unique: int | None = None,
    min_side: int = 384,
    max_side: int = 512,
) -> tuple[Path, Path]:
    """The same n samples (JPEG sides in [min_side, max_side]) as DataCompDR-style joined tars
    (``shards`` of them, consecutive samples, ``shard-00000.tar`` ...; the test helper
    ``write_tar``) and as a DR store;
    returns (first tar, store). ``unique``: draw only that many images, augmentations and
    embeddings and cycle through them (drawing is slow; the loaders do the same work per
    sample either way). Kept between runs when built with the same arguments."""
    from mobileclip_fastload.store import Sample, StoreWriter, aug_records
    from mobileclip_fastload.testing.datacompdr import normalised_embeddings as unit_rows
    from mobileclip_fastload.testing.datacompdr import write_tar
    from mobileclip_fastload.testing.synthetic_store import photo_jpeg, random_aug_records
    from mobileclip_fastload.tokenizer import tokenize

    tar_paths = shard_paths(out, shards)
    tar_path, store_path = tar_paths[0], out / "store"
    spec_path = out / "bench-data.json"
    spec = {"samples": n, "seed": seed, "shards": shards, "unique": unique, "sides": [min_side, max_side]}
    if spec_path.exists() and json.loads(spec_path.read_text()) == spec:
        return tar_path, store_path
    spec_path.unlink(missing_ok=True)
    shutil.rmtree(store_path, ignore_errors=True)
    for old in out.glob("shard-*.tar"):
        old.unlink()
    rng = np.random.default_rng(seed)
    drawn: list[tuple] = []

    def shard_samples(writer, first: int, stop: int):
        """(key, members) of samples first..stop-1 for write_tar, each also added to the store."""
        for i in range(first, stop):
            key = f"{i:08d}"
            if unique is None or len(drawn) < unique:
                jpeg, w, h = photo_jpeg(rng, min_side=min_side, max_side=max_side)
                recs = random_aug_records(rng, J, w, h)
                param_aug = [
                    None
                    if r["flags"] & 1
                    else [
                        [int(r["top"]), int(r["left"]), int(r["height"]), int(r["width"])],
                        [[int(r[f"op{k}"]), float(r[f"m{k}"])] for k in range(int(r["n_ops"]))],
                    ]
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
            yield (
                key,
                [
                    ("jpg", jpeg),
                    ("txt", caption.encode()),
                    ("syn.json", json.dumps({"syn_text": syn}).encode()),
                    ("paug.json", json.dumps({"param_aug": param_aug}).encode()),
                    ("npz", npz.getvalue()),
                    ("json", json.dumps({"uid": key}).encode()),
                ],
            )
            writer.add(
                Sample(
                    uid=key,
                    image=jpeg,
                    width=w,
                    height=h,
                    orig_width=w,
                    orig_height=h,
                    caption=caption,
                    caption_tokens=tokenize(caption),
                    syn_captions=syn,
                    syn_tokens=[tokenize(t) for t in syn],
                    aug=aug_records(param_aug, width=w, height=h)[0],
                    image_emb=image_emb,
                    text_emb=text_emb,
                    sha256=None,
                    flags=0,
                )
            )

    with StoreWriter(store_path, J=J, S=S, K=K, D=D) as writer:
        for k, tar in enumerate(tar_paths):
            write_tar(tar, shard_samples(writer, k * n // shards, (k + 1) * n // shards))
    spec_path.write_text(json.dumps(spec))
    return tar_path, store_path


def shard_paths(out: Path, shards: int) -> list[Path]:
    return [out / f"shard-{k:05d}.tar" for k in range(shards)]


def _tar_members(data: Path, suffixes: tuple[str, ...]) -> dict[str, dict[str, bytes]]:
    """key -> {suffix: bytes} over every shard in ``data``, in shard order."""
    out: dict[str, dict[str, bytes]] = {}
    for tar in sorted(data.glob("shard-*.tar")):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                key, _, suffix = m.name.partition(".")
                if suffix in suffixes:
                    out.setdefault(key, {})[suffix] = t.extractfile(m).read()
    return out


def _jpegs(data: Path) -> list[bytes]:
    return [m["jpg"] for m in _tar_members(data, ("jpg",)).values()]


# ----------------------------------------------------------------------------- the reference
def reference_pipeline(tars: list[Path], batch: int, workers: int, loop: bool = False, pin_memory: bool = False):
    """What users run today, as open_clip's ``get_wds_dataset`` (with Apple's DR patch) builds it:
    open_clip's own shard shuffle, node and worker split and shuffle sizes, then the
    DR sample (Pillow + torchvision replay of a random stored augmentation, npz embedding rows,
    open_clip tokenizer), batched in the workers; a DataLoader with ``workers`` processes yields
    6-tuples ``(image, text, image_emb, text_emb, syn_text, syn_text_emb)``. Without ``loop``:
    one pass, each worker reading its own group of shards (open_clip requires at least one
    shard per worker); with ``loop``: open_clip's ``--dataset-resampled`` (each worker draws
    shards with replacement, forever)."""
    import torch
    import torchvision.transforms.functional as TF
    import webdataset as wds
    from mobileclip_fastload.loader import TRAINING_INTERPOLATION
    from mobileclip_fastload.reference import reference_replay
    from open_clip import get_tokenizer
    from open_clip_train.data import (
        _SAMPLE_SHUFFLE_INITIAL,
        _SAMPLE_SHUFFLE_SIZE,
        _SHARD_SHUFFLE_INITIAL,
        _SHARD_SHUFFLE_SIZE,
        ResampledShards2,
        SharedEpoch,
        detshuffle2,
    )

    if not loop and len(tars) < max(1, workers):
        raise ValueError(
            f"the reference needs at least one shard per worker (open_clip asserts it): "
            f"{len(tars)} shards for {workers} workers"
        )
    urls = "::".join(str(t) for t in tars)  # open_clip's --train-data form (ResampledShards2 takes only that)
    tokenizer = get_tokenizer("ViT-B-16")
    epoch = SharedEpoch(0)

    def dr_sample(sample):
        # Apple's preprocess_dr: a random stored augmentation, caption and synthetic caption.
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
        return (
            image,
            text,
            torch.from_numpy(emb["image_emb"][j]).half(),
            torch.from_numpy(emb["text_emb"][0]).half(),
            syn_text,
            torch.from_numpy(emb["text_emb"][1 + s]).half(),
        )

    if loop:
        shards = [ResampledShards2(urls, deterministic=True, epoch=epoch)]
    else:
        shards = [
            wds.SimpleShardList(urls),
            detshuffle2(bufsize=_SHARD_SHUFFLE_SIZE, initial=_SHARD_SHUFFLE_INITIAL, seed=0, epoch=epoch),
            wds.split_by_node,
            wds.split_by_worker,
        ]
    ds = wds.DataPipeline(
        *shards,
        # open_clip's tarfile_to_samples_nothrow fails on the end-of-shard marker webdataset 1.0
        # yields (KeyError 'fname'); webdataset's own reader, which open_clip names as its equivalent:
        wds.tarfile_to_samples(handler=wds.warn_and_continue),
        wds.shuffle(bufsize=_SAMPLE_SHUFFLE_SIZE, initial=_SAMPLE_SHUFFLE_INITIAL),
        wds.map(dr_sample),
        wds.batched(batch),  # partial last batches: every sample of the pass is counted
    )
    return wds.WebLoader(
        ds, batch_size=None, shuffle=False, num_workers=workers, persistent_workers=workers > 0, pin_memory=pin_memory
    )


# ----------------------------------------------------------------------------- runners
def run_reference(data: Path, workers: int, batch: int) -> tuple[int, float, float]:
    import open_clip  # noqa: F401  (imports are not timed)
    import open_clip_train.data  # noqa: F401
    import webdataset  # noqa: F401

    tars = sorted(data.glob("shard-*.tar"))
    t0 = _start()
    return _drain(reference_pipeline(tars, batch, workers), t0)


def run_fast(data: Path, threads: int, batch: int, image_dtype: str = "float32") -> tuple[int, float, float]:
    from mobileclip_fastload import FastReinforcedLoader

    t0 = _start()
    loader = FastReinforcedLoader(
        data / "store", batch, image_size=IMAGE_SIZE, num_threads=threads, seed=0, image_dtype=image_dtype
    )
    return _drain(loader, t0)


def run_fast_uint8(data: Path, threads: int, batch: int) -> tuple[int, float, float]:
    """Same, with uint8 images (normalisation left to the GPU, 4x less to copy to it)."""
    return run_fast(data, threads, batch, image_dtype="uint8")


# CPU time of this process and its reaped children (DataLoader workers), less the RSS sampler's.
_CPU = {"sampler": 0.0, "start": 0.0, "used": 0.0}


def _cpu_seconds() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime - _CPU["sampler"]


def _start() -> float:
    """Start the clocks: wall time returned, CPU time kept for `_cpu_used`."""
    _CPU["start"] = _cpu_seconds()
    return time.perf_counter()


def _cpu_used() -> None:
    _CPU["used"] = _cpu_seconds() - _CPU["start"]


def _drain(loader, t0: float) -> tuple[int, float, float]:
    """Iterate one epoch; (samples, time to first batch, total time), both from `t0`
    (just before the loader is built: imports are not counted). The loader is then
    shut down, so that its worker processes' CPU time is counted."""
    first, b = None, None
    n = 0
    for b in loader:
        n += len(b[0])
        if first is None:
            first = time.perf_counter() - t0
    elapsed = time.perf_counter() - t0
    del loader, b
    gc.collect()  # the last reference: DataLoader workers are joined (reaped) here
    _cpu_used()
    return n, first or 0.0, elapsed


def run_pillow_decode(data: Path, *_args) -> tuple[int, float, float]:
    from PIL import Image

    jpegs = _jpegs(data)
    t0 = _start()
    for jpeg in jpegs:
        Image.open(io.BytesIO(jpeg)).convert("RGB").load()
    elapsed = time.perf_counter() - t0
    _cpu_used()
    return len(jpegs), 0.0, elapsed


def run_turbo_decode(data: Path, *_args) -> tuple[int, float, float]:
    from mobileclip_fastload._core import decode_rgb

    jpegs = _jpegs(data)
    t0 = _start()
    for jpeg in jpegs:
        decode_rgb(jpeg)
    elapsed = time.perf_counter() - t0
    _cpu_used()
    return len(jpegs), 0.0, elapsed


def run_dali(data: Path, threads: int, batch: int) -> tuple[int, float, float]:
    from nvidia.dali import fn, pipeline_def, types

    jpegs = [np.frombuffer(b, dtype=np.uint8) for b in _jpegs(data)]
    n_batches = len(jpegs) // batch

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=None, prefetch_queue_depth=2)
    def pipe():
        data = fn.external_source(
            source=lambda info: [jpegs[(info.iteration * batch + k) % len(jpegs)] for k in range(batch)],
            batch=True,
            batch_info=True,
        )
        img = fn.decoders.image_random_crop(data, device="cpu", output_type=types.RGB)
        return fn.resize(img, resize_x=IMAGE_SIZE, resize_y=IMAGE_SIZE)

    t0 = _start()
    p = pipe()
    p.build()
    p.run()
    first = time.perf_counter() - t0
    for _ in range(n_batches - 1):
        p.run()
    elapsed = time.perf_counter() - t0
    _cpu_used()
    return n_batches * batch, first, elapsed


RUNNERS = {
    "reference": run_reference,
    "fast": run_fast,
    "fast-uint8": run_fast_uint8,
    "pillow-decode": run_pillow_decode,
    "turbo-decode": run_turbo_decode,
    "dali-cpu": run_dali,
}


def _vm_hwm_bytes() -> int:
    """This process's exact peak RSS (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _pil() -> dict:
    """The PIL this interpreter imports (Pillow, or a variant shadowing it)."""
    import PIL

    return {"pil_version": PIL.__version__, "pil_file": PIL.__file__}


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
                with contextlib.suppress(psutil.Error):
                    rss += c.memory_info().rss
            peak[0] = max(peak[0], rss)
            _CPU["sampler"] = time.thread_time()  # this thread's CPU so far, left out of the runs' CPU
            time.sleep(0.05)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    n, first, elapsed = RUNNERS[kind](data, parallel, batch)  # each runner times itself, imports excluded
    done.set()
    sampler.join()
    peak_bytes = max(peak[0], _vm_hwm_bytes())
    return {
        "kind": kind,
        "parallel": parallel,
        "samples": n,
        "seconds": elapsed,
        "samples_per_s": n / elapsed,
        "time_to_first_batch_s": first,
        "peak_rss_mb": peak_bytes / 2**20,
        "cpu_ms_per_sample": 1e3 * _CPU["used"] / n,
        **_pil(),
    }


# ----------------------------------------------------------------------------- pixels
def pixel_cases(data: Path, n: int, batch: int) -> tuple[list[tuple[bytes, object]], np.ndarray]:
    """The first ``n`` images FastReinforcedLoader yields (uint8, [n, H, W, 3]) and, for each, the
    JPEG and the stored augmentation it replayed (the DataCompDR ``param_aug`` entry)."""
    from mobileclip_fastload import FastReinforcedLoader

    members = _tar_members(data, ("jpg", "paug.json"))
    loader = FastReinforcedLoader(
        data / "store", batch, image_size=IMAGE_SIZE, num_threads=1, seed=0, image_dtype="uint8"
    )
    cases, images = [], []
    for b in loader:
        for r in range(len(b)):
            m = members[f"{int(b.index[r]):08d}"]
            cases.append((m["jpg"], json.loads(m["paug.json"])["param_aug"][int(b.aug_index[r])]))
            images.append(b.images[r].permute(1, 2, 0).numpy().copy())  # CHW -> HWC
        if len(cases) >= n:
            break
    return cases[:n], np.stack(images[:n])


def replay_cases(cases_path: Path, out_path: Path) -> dict:
    """The reference replay of every case with this interpreter's PIL, saved as [n, H, W, 3] uint8
    arrays: ``full`` (crop, resize, ops) and ``resize`` (the same crop and resize, no ops)."""
    from mobileclip_fastload.loader import TRAINING_INTERPOLATION
    from mobileclip_fastload.reference import reference_replay

    def replay(entries):
        return np.stack(
            [reference_replay(jpeg, params, IMAGE_SIZE, TRAINING_INTERPOLATION) for jpeg, params in entries]
        )

    cases = pickle.loads(cases_path.read_bytes())
    no_ops = [(jpeg, None if params is None else [params[0], []]) for jpeg, params in cases]
    with open(out_path, "wb") as f:
        np.savez(f, full=replay(cases), resize=replay(no_ops))
    return _pil()


def pixel_difference(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {
        "max_abs": int(d.max()),
        "differing_fraction": float(np.count_nonzero(d)) / d.size,
        "mean_abs": float(d.mean()),
        "images_differing": int(np.count_nonzero(d.reshape(len(d), -1).max(axis=1))),
        "images": len(d),
    }


def describe_difference(name: str, base: str, diff: dict) -> str:
    exact = " (bit-exact)" if diff["max_abs"] == 0 else ""
    return (
        f"{name} vs {base}: max |diff| {diff['max_abs']}, differing values {100 * diff['differing_fraction']:.2f}%,"
        f" mean |diff| {diff['mean_abs']:.4f}, images differing {diff['images_differing']} of {diff['images']}{exact}"
    )


# ----------------------------------------------------------------------------- variants
def pil_variants(args) -> dict[str, Path]:
    """NAME -> directory of the PIL variants that are present; says how to get a missing one."""
    specs = args.pil_variant or [f"pillow-simd={args.out / 'pillow-simd'}"]
    found = {}
    for spec in specs:
        name, _, where = spec.partition("=")
        where = Path(where).resolve()
        if name == "pillow-simd" and args.install_pillow_simd and not (where / "PIL").is_dir():
            print(f"building {PILLOW_SIMD} into {where} (from source, a few minutes) ...", flush=True)
            env = dict(os.environ, CC=os.environ.get("CC", "cc -mavx2"))
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--no-deps",
                    "--no-binary",
                    "pillow-simd",
                    "--target",
                    str(where),
                    PILLOW_SIMD,
                ],
                env=env,
                check=False,
            )
        if (where / "PIL").is_dir():
            found[name] = where
        elif name == "pillow-simd":
            print(
                f"pillow-simd not found in {where}: skipping its rows. It conflicts with Pillow in one environment,\n"
                f"so it goes into a directory of its own (needs a C compiler and libjpeg/zlib headers; Debian:\n"
                f"apt-get install libjpeg-dev zlib1g-dev), then rerun, or pass --install-pillow-simd:\n"
                f"    CC='cc -mavx2' {sys.executable} -m pip install --no-deps --no-binary pillow-simd"
                f" --target {where} '{PILLOW_SIMD}'"
            )
        else:
            print(f"{name}: no PIL package in {where}: skipping")
    return found


def _env(variant_dir: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if variant_dir is not None:  # first on the path: its PIL shadows the installed Pillow
        env["PYTHONPATH"] = os.pathsep.join([str(variant_dir), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _child(args, extra: list[str], variant_dir: Path | None) -> dict | None:
    cmd = [
        sys.executable,
        __file__,
        "--out",
        str(args.out),
        "--data",
        str(args.data),
        "--batch",
        str(args.batch),
        *extra,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(variant_dir))
    if res.returncode != 0:
        print(f"{' '.join(extra)} failed:\n{res.stderr[-2000:]}")
        return None
    row = json.loads(res.stdout.strip().splitlines()[-1])
    if variant_dir is not None and not Path(row["pil_file"]).is_relative_to(variant_dir):
        print(f"{' '.join(extra)}: PIL came from {row['pil_file']}, not {variant_dir}: dropped")
        return None
    return row


def _spread(values: list[float], fmt: str) -> str:
    vs = sorted(values)
    med = fmt.format(float(np.median(vs)))
    lo, hi = fmt.format(vs[0]), fmt.format(vs[-1])
    return med if lo == hi else f"{med} ({lo}-{hi})"


def _summary(runs: list[dict], reference: list[dict]) -> dict:
    """One configuration over the rounds: median rate, per-round ratios to the Pillow reference."""
    ref = {r["round"]: r for r in reference}
    rates = [r["samples_per_s"] for r in runs]
    return {
        **runs[0],
        "rates": rates,
        "samples_per_s": float(np.median(rates)),
        "vs_reference": [r["samples_per_s"] / ref[r["round"]]["samples_per_s"] for r in runs if r["round"] in ref],
        "cpu_vs_reference": [
            ref[r["round"]]["cpu_ms_per_sample"] / r["cpu_ms_per_sample"] for r in runs if r["round"] in ref
        ],
        "cpu_ms": [r["cpu_ms_per_sample"] for r in runs],
        "time_to_first_batch_s": float(np.median([r["time_to_first_batch_s"] for r in runs])),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


def _label(r: dict) -> str:
    if r["kind"] == "reference":
        return f"reference (WebDataset + {r['pil']} + torchvision)"
    return {
        "fast": "FastReinforcedLoader, float32 out",
        "fast-uint8": "FastReinforcedLoader, uint8 out",
        "pillow-decode": "Pillow decode only (bound)",
        "turbo-decode": "libjpeg-turbo decode only, this package (bound)",
        "dali-cpu": "DALI CPU: decode random crop + resize only",
    }[r["kind"]]


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=600)
    ap.add_argument("--shards", type=int, help="tar shards of the reference (default: max(16, most workers))")
    ap.add_argument(
        "--unique", type=int, help="draw only this many distinct images (faster to build; same work per sample)"
    )
    ap.add_argument("--parallel", default=f"1,{os.cpu_count() or 1}", help="workers / threads, comma-separated")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved rounds of every configuration")
    ap.add_argument("--pixel-samples", type=int, default=64)
    ap.add_argument(
        "--pil-variant",
        action="append",
        metavar="NAME=DIR",
        help="a PIL installed with pip --target DIR to run the reference under too (repeatable; "
        "default pillow-simd=OUT/pillow-simd)",
    )
    ap.add_argument(
        "--install-pillow-simd", action="store_true", help=f"build {PILLOW_SIMD} into its directory if missing"
    )
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--run-one", nargs=2, metavar=("KIND", "PARALLEL"), help=argparse.SUPPRESS)
    ap.add_argument("--replay-cases", nargs=2, type=Path, metavar=("CASES", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.data = args.data or args.out / "loader-data"
    if args.run_one:
        print(json.dumps(run_one(args.run_one[0], args.data, int(args.run_one[1]), args.batch)))
        return
    if args.replay_cases:
        print(json.dumps(replay_cases(*args.replay_cases)))
        return
    from mobileclip_fastload.loader import TRAINING_INTERPOLATION

    parallel = sorted({int(p) for p in args.parallel.split(",")})
    shards = args.shards or max(16, *parallel)
    args.data.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    build_data(args.data, args.samples, shards=shards, unique=args.unique)
    print(
        f"data: {args.samples} samples (384-512 px JPEG q70-95, J={J} S={S} K={K} D={D}) in {shards} shards"
        f" + a DR store, ready in {time.perf_counter() - t0:.0f}s; {os.cpu_count()} cores"
    )
    variants = pil_variants(args)

    # (e) pixels first: a variant that cannot replay is reported before the timed runs
    cases, loader_images = pixel_cases(args.data, args.pixel_samples, args.batch)
    cases_path = args.out / "pixel-cases.pkl"
    cases_path.write_bytes(pickle.dumps(cases))
    replays: dict[str, dict[str, np.ndarray]] = {}
    for name, where in [(None, None), *variants.items()]:
        npz = args.out / f"pixels-{name or 'pillow'}.npz"
        info = _child(args, ["--replay-cases", str(cases_path), str(npz)], where)
        if info is not None:
            with np.load(npz) as z:
                replays[f"{name or 'Pillow'} {info['pil_version']}"] = {k: z[k] for k in ("full", "resize")}
    pixel_lines = [
        (
            f"pixels: the first {len(cases)} images the loader yields (uint8, {IMAGE_SIZE} px {TRAINING_INTERPOLATION},"
            f" stored crop + RandAugment ops) against the reference replay of the same augmentations:"
        )
    ]
    names = list(replays)
    if names:
        base = names[0]
        ours = pixel_difference(loader_images, replays[base]["full"])
        pixel_lines.append("  " + describe_difference("FastReinforcedLoader", base, ours))
        for part, title in (("full", "crop + resize + ops"), ("resize", "crop + resize only (ops left out)")):
            for k, a in enumerate(names):
                for b in names[k + 1 :]:
                    diff = pixel_difference(replays[b][part], replays[a][part])
                    pixel_lines.append(f"  {title}: " + describe_difference(b, a, diff))
    print("\n".join(pixel_lines), flush=True)

    # throughput: every configuration in its own process, the variants beside Pillow
    plan = [("reference", p, None) for p in parallel]
    plan += [("reference", p, name) for name in variants for p in parallel]
    plan += [(k, p, None) for k in ("fast", "fast-uint8") for p in parallel]
    plan += [("pillow-decode", 1, None), ("turbo-decode", 1, None)]
    try:
        import nvidia.dali  # noqa: F401

        plan += [("dali-cpu", p, None) for p in parallel]
    except ImportError:
        print("NVIDIA DALI not installed: skipping (d)")
    # Rounds: every configuration once per round, in plan order, so a shared machine's load hits
    # all alike; ratios are taken within a round, then their median over the rounds.
    runs: dict[tuple, list[dict]] = {}
    for rnd in range(args.repeats):
        for kind, par, variant in plan:
            r = _child(args, ["--run-one", kind, str(par)], variants.get(variant))
            if r is None:
                continue
            r["variant"], r["pil"], r["round"] = variant, f"{variant or 'Pillow'} {r['pil_version']}", rnd
            runs.setdefault((kind, par, variant), []).append(r)
            print(
                f"round {rnd + 1}/{args.repeats} {_label(r):>58} x{par}: {r['samples_per_s']:8.1f} samples/s"
                f"  {r['cpu_ms_per_sample']:.2f} CPU ms/sample  first batch {r['time_to_first_batch_s']:.3f}s"
                f"  peak RSS {r['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    rows = [_summary(rs, runs.get(("reference", key[1], None), [])) for key, rs in runs.items()]
    lines = [
        (
            f"median (min-max) over {args.repeats} interleaved round(s); CPU time: the process and its DataLoader"
            " workers, from the loader's construction to its shutdown"
        ),
        "",
        (
            "| pipeline | workers/threads | samples/s | vs reference with Pillow (same N, same round) |"
            " CPU ms / sample | reference's CPU / this CPU (same N,"
            " same round) | time to first batch (s) | peak RSS (MB) |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        compared = r["vs_reference"] and r["kind"] in ("reference", "fast", "fast-uint8")
        ratio = _spread(r["vs_reference"], "{:.2f}x") if compared else ""
        cpu_ratio = _spread(r["cpu_vs_reference"], "{:.2f}x") if compared else ""
        lines.append(
            f"| {_label(r)} | {r['parallel']} | {_spread(r['rates'], '{:.0f}')} | {ratio} |"
            f" {_spread(r['cpu_ms'], '{:.2f}')} | {cpu_ratio} |"
            f" {r['time_to_first_batch_s']:.3f} | {r['peak_rss_mb']:.0f} |"
        )
    fast = {key[1]: rs for key, rs in runs.items() if key[0] == "fast"}
    if len(fast) > 1:
        lo, hi = min(fast), max(fast)
        scale = [
            b["samples_per_s"] / a["samples_per_s"] for a in fast[lo] for b in fast[hi] if a["round"] == b["round"]
        ]
        lines.append(f"\nFastReinforcedLoader {lo} -> {hi} thread scaling: {_spread(scale, '{:.2f}x')}")
    text = "\n".join([*lines, "", *pixel_lines])
    print(text)
    (args.out / "bench_loader_throughput.md").write_text(text + "\n")
    (args.out / "bench_loader_throughput.json").write_text(json.dumps({"rows": rows, "pixels": pixel_lines}, indent=1))
    _plot(rows, args.out / "bench_loader_throughput.png")


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    names = [("reference " + r["pil"] if r["kind"] == "reference" else r["kind"]) for r in rows]
    labels = [n.replace(" ", "\n").replace("-", "-\n") + f"\nx{r['parallel']}" for n, r in zip(names, rows)]
    ax.bar(
        labels,
        [r["samples_per_s"] for r in rows],
        color=["#d62728" if r["kind"].startswith("fast") else "#888" for r in rows],
    )
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylabel("samples / s")
    ax.set_title(
        f"Reinforced-sample loading, {IMAGE_SIZE}px output, {os.cpu_count()} cores (grey: references and bounds)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
