"""The reinforcement GPU proof (issue 20), one prepared script: <= 7 minutes on an H100 / H200,
JSON and a Markdown table under ``--out`` (default ``$OUT``). Nothing is downloaded: random-init
models of the real sizes, two ``ViT-L-14`` teachers (the first a QuickGELU twin of ``:openai``, the
second GELU like ``:datacomp_xl_s13b_b90k``) in bf16 and ``coca_ViT-L-14``, in inference mode.

0. Preflight: CoCa ``generate`` works here (open_clip 3.3 needs ``transformers<4.56``; without it
   every shard would record FAILED). Stops at once otherwise.
1. Teacher pass: ``reinforce()`` fed by the Rust replay (all cores, one decode per image for all
   J) against the same teachers fed by a Pillow + torchvision DataLoader (one worker per core):
   augmented images/s, GPU utilisation, and the replay's own rate on this machine's cores.
2. Captioning: images/s at ``images_per_call`` 1 and the largest that fits (fixed length 30).
3. A small end-to-end ``reinforce`` run through the ``torchrun`` executor on the one GPU, with the
   stage times from its report.

Every step's failures stop the script (exit 1) with the error, never a rate over failed shards.
On the CPU, ``--tiny`` runs the same steps with tiny models (the dry run).

    python benches/gpu_reinforce_check.py                 # on the GPU machine
    python benches/gpu_reinforce_check.py --tiny --out /tmp/gpu-check   # CPU dry run
    python benches/gpu_reinforce_check.py --preflight-only [--tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_reinforce's DataLoader baseline and failed-shard check

import bench_reinforce  # noqa: E402

CAPTION_LENGTH = 30  # DataCompDR's fixed caption length (OpenClipCaptioner's default seq_len)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- models
def model_specs(tiny: bool, work: str):
    """(coca, (teacher a, teacher b)) random-init specs: real sizes, or the tests' tiny ones."""
    from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec, quick_gelu_of
    from mobileclip_fastload.testing.tiny_models import tiny_specs

    if tiny:
        coca, (a, b) = tiny_specs(os.path.join(work, "configs"))
        return coca, (OpenClipSpec(a.name, None, a.config_file, 1, quick_gelu=True), b)
    quick = quick_gelu_of(OpenClipSpec("ViT-L-14", "openai"))
    gelu = quick_gelu_of(OpenClipSpec("ViT-L-14", "datacomp_xl_s13b_b90k"))
    return (
        OpenClipSpec("coca_ViT-L-14", None, init_seed=3),
        (
            OpenClipSpec("ViT-L-14", None, init_seed=1, quick_gelu=quick),
            OpenClipSpec("ViT-L-14", None, init_seed=2, quick_gelu=gelu),
        ),
    )


def preflight(coca, device: str) -> dict:
    """CoCa generates here: versions, and one image's S captions at the fixed length."""
    import numpy as np
    import torch

    versions = {"python": sys.version.split()[0], "torch": torch.__version__}
    for name in ("open_clip", "transformers", "tokenizers", "huggingface_hub", "ftfy", "timm"):
        try:
            versions[name] = __import__(name).__version__
        except Exception as e:  # a missing module is the finding
            versions[name] = f"MISSING ({type(e).__name__}: {e})"
    try:
        from transformers import BeamSearchScorer  # noqa: F401  (open_clip 3.3's generate imports it)
    except Exception as e:
        raise SystemExit(f"preflight: CoCa cannot generate: {type(e).__name__}: {e}\nversions: {versions}") from e
    from mobileclip_fastload.reinforce.captioners import OpenClipCaptioner

    captioner = OpenClipCaptioner(coca, tag="coca", num_captions=5, seq_len=CAPTION_LENGTH)
    rgb = np.random.default_rng(0).integers(0, 256, (256, 320, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    caps = captioner.caption([captioner.prepare(rgb)], [1], device)
    seconds = time.perf_counter() - t0
    if len(caps) != 1 or len(caps[0]) != 5 or not all(isinstance(c, str) for c in caps[0]):
        raise SystemExit(f"preflight: CoCa returned {caps!r}")
    log(
        f"preflight: CoCa {coca.describe()} generated 5 captions of {CAPTION_LENGTH} tokens on {device} "
        f"in {seconds:.2f} s (first call, includes the build); versions {versions}"
    )
    return {"ok": True, "versions": versions, "first_call_seconds": seconds, "sample": caps[0][0][:80]}


# ----------------------------------------------------------------------------- GPU utilisation
class GpuSampler:
    """Mean GPU utilisation (NVML, every 0.1 s) while the ``with`` body runs; None without a GPU."""

    def __init__(self, device: str):
        self.device, self.samples, self.stop = device, [], threading.Event()
        self.handle = None
        if device.startswith("cuda"):
            try:
                import pynvml

                pynvml.nvmlInit()
                index = int(device.split(":")[1]) if ":" in device else 0
                self.handle, self.nvml = pynvml.nvmlDeviceGetHandleByIndex(index), pynvml
            except Exception as e:
                log(f"no NVML ({e}): GPU utilisation not sampled")

    def __enter__(self):
        if self.handle is not None:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        return self

    def _run(self):
        while not self.stop.wait(0.1):
            self.samples.append(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)

    def __exit__(self, *exc):
        self.stop.set()
        if self.handle is not None:
            self.thread.join()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


# ----------------------------------------------------------------------------- 1. teachers
def replay_rate(shards, J: int, threads: int, size: int) -> dict:
    """The CPU side alone: decode + J draws + J Rust replays per image on ``threads`` threads (wall clock)."""
    from mobileclip_fastload.ingest.options import Dims
    from mobileclip_fastload.ingest.tar_samples import TarSampleReader
    from mobileclip_fastload.reinforce.captioners import OpenClipCaptioner
    from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec
    from mobileclip_fastload.reinforce.options import ReinforceOptions
    from mobileclip_fastload.reinforce.prepare import prepare_sample

    opts = ReinforceOptions(
        dims=Dims(J, 1, 1, 1), seed=0, teachers=(OpenClipSpec("unused"),), captioners=(OpenClipCaptioner(),)
    )
    raws = [raw for path in shards for raw in TarSampleReader(path)]
    views = [(size, "bicubic")]
    prepare_sample(raws[0], opts, views)  # warm-up
    with ThreadPoolExecutor(threads) as pool:
        t0 = time.perf_counter()
        list(pool.map(lambda r: prepare_sample(r, opts, views), raws))
        seconds = time.perf_counter() - t0
    return {"threads": threads, "augmented_images": len(raws) * J, "augmented_images_per_s": len(raws) * J / seconds}


def teacher_pass(args, teachers, device: str, work: str) -> dict:
    """reinforce() (Rust replay feed) vs a Pillow + torchvision DataLoader feed, same teachers."""
    bench_args = argparse.Namespace(
        teachers="given",
        images=args.images,
        shards=args.shards,
        side=args.side,
        J=args.J,
        batch_augmented_images=args.batch_augmented_images,
        num_threads=args.num_threads,
    )
    result = bench_reinforce.teachers_throughput(
        bench_args, device, teachers=teachers, work=work, sampler=lambda: GpuSampler(device)
    )
    result["gpu_util_ours_pct"], result["gpu_util_dataloader_pct"] = result.pop("sampled")
    shards = sorted(str(p) for p in Path(work, "pairs").glob("*.tar"))
    result["replay_alone"] = replay_rate(shards, args.J, args.num_threads, 224 if not args.tiny else 32)
    return result


# ----------------------------------------------------------------------------- 2. captioning
def captioning(coca, device: str, ladder: list[int], images: int) -> list[dict]:
    """images/s at each images_per_call (S = 5 rows per image, fixed length); stops at the first that does
    not fit in memory."""
    import numpy as np
    import torch
    from mobileclip_fastload.reinforce.captioners import OpenClipCaptioner

    rng = np.random.default_rng(1)
    out = []
    for per_call in ladder:
        n = max(per_call, images if per_call == 1 else 2 * per_call)
        captioner = OpenClipCaptioner(
            coca, tag="coca", num_captions=5, seq_len=CAPTION_LENGTH, images_per_call=per_call
        )
        batch = [captioner.prepare(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) for _ in range(n)]
        try:
            captioner.caption(batch[:per_call], list(range(per_call)), device)  # warm-up (and the memory test)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            with GpuSampler(device) as util:
                t0 = time.perf_counter()
                caps = captioner.caption(batch, list(range(n)), device)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - t0
        except torch.cuda.OutOfMemoryError:
            log(f"captioning: images_per_call={per_call} does not fit")
            torch.cuda.empty_cache()
            break
        assert len(caps) == n and all(len(c) == 5 for c in caps)
        row = {
            "images_per_call": per_call,
            "images": n,
            "images_per_s": n / seconds,
            "gpu_util_pct": util.mean,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None,
        }
        log(f"captioning: {row}")
        out.append(row)
    return out


# ----------------------------------------------------------------------------- 3. torchrun end to end
def end_to_end(args, coca, teachers, work: str) -> dict:
    """`torchrun --nproc-per-node=1 -m mobileclip_fastload reinforce` on a few hundred generated pairs."""
    from mobileclip_fastload.testing.image_text_pairs import make_pair_shards

    shards = make_pair_shards(
        os.path.join(work, "e2e-pairs"),
        num_shards=args.e2e_shards,
        samples_per_shard=args.e2e_pairs // args.e2e_shards,
        seed=7,
        max_side=args.side,
    )
    store = os.path.join(work, "e2e-store")
    configs = [f"--model-config={s.config_file}" for s in (coca, *teachers) if s.config_file]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=1",
        "--master-port=29571",
        "-m",
        "mobileclip_fastload",
        "reinforce",
        *shards,
        "-o",
        store,
        "--executor",
        "torchrun",
        "--teacher",
        teachers[0].name,
        "--teacher",
        teachers[1].name,
        "--captioner",
        f"coca={coca.name}",
        "-J",
        str(args.J),
        "--caption-length",
        str(8 if args.tiny else CAPTION_LENGTH),
        "--no-progress",
        *configs,
    ]
    log("end to end: " + " ".join(cmd))
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.e2e_timeout)
    except subprocess.TimeoutExpired as e:
        raise SystemExit(
            f"end to end: torchrun ran past {args.e2e_timeout} s:\n{(e.stderr or b'')[-3000:]!r}"
        ) from None
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(
            f"end to end: torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    with open(os.path.join(store, "reinforce_report.json")) as f:
        report = json.load(f)
    if report["shards"]["unreadable"]:
        raise SystemExit(f"end to end: failed shards: {report['shards']['unreadable']}")
    run = report["this_run"]
    return {
        "pairs": args.e2e_pairs,
        "J": args.J,
        "wall_seconds": wall,
        "report_seconds": report["seconds"],
        **{
            k: run[k]
            for k in (
                "samples_per_s",
                "augmented_images_per_s",
                "cpu_replay_seconds",
                "teacher_seconds",
                "caption_seconds",
            )
        },
    }


# ----------------------------------------------------------------------------- output
def markdown(result: dict) -> str:
    dev = result["device_name"]
    lines = [
        f"# Reinforcement GPU check ({dev})",
        "",
        f"command: `{result['command']}`",
        "",
        "| measurement | value |",
        "|---|---|",
    ]
    t = result.get("teachers")
    if t:
        lines += [
            f"| teacher pass, Rust replay feed (aug. images/s) | {t['ours_aug_per_s']:.0f} |",
            (
                "| teacher pass, Pillow + torchvision DataLoader feed (aug. images/s) | "
                f"{t['pillow_dataloader_aug_per_s']:.0f} |"
            ),
            f"| ratio replay / DataLoader | {t['ratio']:.2f} |",
            (
                "| GPU utilisation, replay feed / DataLoader feed (%) | "
                f"{t['gpu_util_ours_pct']} / {t['gpu_util_dataloader_pct']} |"
            ),
            (
                f"| replay alone on {t['replay_alone']['threads']} threads (aug. images/s) | "
                f"{t['replay_alone']['augmented_images_per_s']:.0f} |"
            ),
        ]
    for row in result.get("captioning", []):
        lines.append(f"| captioning, images_per_call={row['images_per_call']} (images/s) | {row['images_per_s']:.2f} |")
    e = result.get("end_to_end")
    if e:
        lines.append(
            f"| torchrun end to end, {e['pairs']} pairs x J={e['J']}: samples/s, aug/s | "
            f"{e['samples_per_s']:.1f}, {e['augmented_images_per_s']:.0f} |"
        )
        lines.append(
            f"| stage seconds: replay (CPU, summed), teachers, captions | {e['cpu_replay_seconds']:.1f}, "
            f"{e['teacher_seconds']:.1f}, {e['caption_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny random-init models (the CPU dry run)")
    p.add_argument("--preflight-only", action="store_true")
    p.add_argument("--out", default=os.environ.get("OUT", "gpu-check-out"))
    p.add_argument("--device", default=None)
    p.add_argument("--images", type=int, default=None, help="teacher pass images (default 256; tiny: 24)")
    p.add_argument("-J", type=int, default=30)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--side", type=int, default=512)
    p.add_argument("--batch-augmented-images", type=int, default=480)
    p.add_argument("--num-threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--caption-ladder", default=None, help="images_per_call values (default 1,16,64,128; tiny: 1,2)")
    p.add_argument("--caption-images", type=int, default=None, help="images at images_per_call=1 (default 8; tiny: 2)")
    p.add_argument(
        "--e2e-pairs",
        type=int,
        default=None,
        help="end-to-end pairs (default 256; tiny: 6, captions of 8 tokens: the CPU dry run checks the plumbing)",
    )
    p.add_argument("--e2e-shards", type=int, default=2)
    p.add_argument("--e2e-timeout", type=int, default=240)
    p.add_argument("--skip", default="", help="comma list of steps to skip: teachers,captioning,e2e")
    args = p.parse_args()
    import torch

    device = args.device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    args.images = args.images or (24 if args.tiny else 256)
    args.caption_images = args.caption_images or (2 if args.tiny else 8)
    args.e2e_pairs = args.e2e_pairs or (6 if args.tiny else 256)
    if args.tiny:
        args.side = min(args.side, 160)
    ladder = [int(v) for v in (args.caption_ladder or ("1,2" if args.tiny else "1,16,64,128")).split(",")]
    skip = set(filter(None, args.skip.split(",")))
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="gpu-reinforce-check-")
    coca, teachers = model_specs(args.tiny, work)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else f"CPU ({args.num_threads} threads)"
    result: dict = {
        "device": device,
        "device_name": name,
        "command": " ".join([sys.executable, *sys.argv]),
        "models": {
            "captioner": coca.describe(),
            "teachers": [t.describe() for t in teachers],
            "teachers_quick_gelu": [t.quick_gelu for t in teachers],
            "teacher_precision": "bf16" if device.startswith("cuda") else "fp32",
        },
    }
    t0 = time.perf_counter()

    def save() -> None:
        result["seconds"] = time.perf_counter() - t0
        with open(os.path.join(args.out, "gpu_reinforce_check.json"), "w") as f:
            json.dump(result, f, indent=1)
        with open(os.path.join(args.out, "gpu_reinforce_check.md"), "w") as f:
            f.write(markdown(result))

    result["preflight"] = preflight(coca, device)
    save()
    if args.preflight_only:
        return 0
    try:
        if "teachers" not in skip:
            log("teacher pass ...")
            result["teachers"] = teacher_pass(args, teachers, device, work)
            log(f"teacher pass: {json.dumps(result['teachers'])}")
            save()
        if "captioning" not in skip:
            result["captioning"] = captioning(coca, device, ladder, args.caption_images)
            save()
        if "e2e" not in skip:
            result["end_to_end"] = end_to_end(args, coca, teachers, work)
            log(f"end to end: {json.dumps(result['end_to_end'])}")
            save()
    except bench_reinforce.ShardsFailed as e:
        result["error"] = str(e)
        save()
        print(f"gpu_reinforce_check: {e}", file=sys.stderr)
        return 1
    print(markdown(result))
    log(f"done in {time.perf_counter() - t0:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
