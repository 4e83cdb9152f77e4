"""Reinforcement throughput.

1. CPU, per core: augmented images/s for decode + augment + replay at 224 px
   (``reinforce.prepare.prepare_sample``: Pillow check of the image, the loader-exactness
   check, J torchvision-exact draws, J Rust replays), against Pillow + torchvision doing the
   same work the usual way (decode once, then per augmentation ``resized_crop`` bicubic +
   the RandAugment ops). CPU seconds of the measuring thread, so the rate is per core.
   Target: >= 700 augmented images/s per core (16 cores then feed ~11k/s).

2. Teachers (``--teachers``): augmented images/s through K teachers at 224 px,
   ``reinforce()`` itself (the embedding pass, captions joined from a captioning pass run
   first and not timed) against the same teachers fed by a torch ``DataLoader`` whose
   workers run Pillow + torchvision (decode, RandomResizedCrop box, RandAugment ops,
   ToTensor, Normalize) for the same parameters. On a GPU: two ViT-L-14-sized random-init
   teachers, bf16 autocast (``--teachers vit-l``; target >= 1,200/s on an H200). On a CPU
   run it with the tiny teachers (``--teachers tiny``, the default without CUDA).

   The timed run is steady state: a first, untimed run on the same inputs builds the models
   and warms the kernels; the bench stops (exit status 1, each shard's error) if any shard
   failed, rather than print a rate over what did not run.

    python benches/bench_reinforce.py --images 48 -J 30 --teachers none  # CPU part only
    python benches/bench_reinforce.py --images 256 --teachers vit-l      # GPU part (CPU part: --cpu-part)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np


def sample_pairs(n: int, max_side: int, seed: int = 0):
    """img2dataset-like JPEGs (sides in [max_side*3/4, max_side]) as RawSamples."""
    from mobileclip_fastload.ingest.tar_samples import RawSample
    from mobileclip_fastload.testing.image_text_pairs import pair_members

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        members = dict(pair_members(rng, f"u{i:06d}", min_side=max_side * 3 // 4, max_side=max_side))
        out.append(RawSample(f"{i:09d}", members))
    return out


def cpu_per_core(samples, J: int, size: int) -> dict:
    """Augmented images per CPU-second of one thread: ours and Pillow + torchvision."""
    import io

    from mobileclip_fastload._core import AUG_OP_NAMES
    from mobileclip_fastload.ingest.options import Dims
    from mobileclip_fastload.reinforce.augmentation import draw_augmentations
    from mobileclip_fastload.reinforce.captioners import OpenClipCaptioner
    from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec
    from mobileclip_fastload.reinforce.options import ReinforceOptions
    from mobileclip_fastload.reinforce.prepare import prepare_sample
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F
    from torchvision.transforms.autoaugment import _apply_op

    opts = ReinforceOptions(
        dims=Dims(J, 1, 1, 1), seed=0, teachers=(OpenClipSpec("none"),), captioners=(OpenClipCaptioner(),)
    )
    views = [(size, "bicubic")]
    prepare_sample(samples[0], opts, views, False)  # warm-up: imports, tables, decoder
    t0 = time.thread_time()
    prepared = [prepare_sample(s, opts, views, False) for s in samples]
    ours = time.thread_time() - t0

    t0 = time.thread_time()
    for s in samples:
        draw_augmentations(0, s.key, J, 100, 100)
    draw = time.thread_time() - t0

    t0 = time.thread_time()
    for p in prepared:
        with Image.open(io.BytesIO(p.image)) as im:
            img = im.convert("RGB")
        for (top, left, h, w), ops in p.entries:
            x = F.resized_crop(img, top, left, h, w, [size, size], InterpolationMode.BICUBIC)
            for op, m in ops:
                x = _apply_op(x, AUG_OP_NAMES[op], m, interpolation=InterpolationMode.NEAREST, fill=None)
    pil = time.thread_time() - t0
    n = len(samples) * J
    return {
        "augmented_images": n,
        "ours_aug_per_core_s": n / ours,
        "pillow_torchvision_aug_per_core_s": n / pil,
        "ratio_ours_over_pillow": pil / ours,
        "draw_us_per_aug": draw / n * 1e6,
        "mean_image_size": [float(np.mean([p.width for p in prepared])), float(np.mean([p.height for p in prepared]))],
    }


class PillowAugDataset:
    """The baseline's worker side: decode once, then per augmentation and teacher view
    (size, mean, std) Pillow + torchvision, normalised; one [J, 3, size, size] per view."""

    def __init__(self, items, views):
        self.items, self.views = items, views

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        import io

        import torch
        from mobileclip_fastload._core import AUG_OP_NAMES
        from PIL import Image
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F
        from torchvision.transforms.autoaugment import _apply_op

        data, entries = self.items[i]
        with Image.open(io.BytesIO(data)) as im:
            img = im.convert("RGB")
        out = []
        for size, mean, std in self.views:
            view = []
            for (top, left, h, w), ops in entries:
                x = F.resized_crop(img, top, left, h, w, [size, size], InterpolationMode.BICUBIC)
                for op, m in ops:
                    x = _apply_op(x, AUG_OP_NAMES[op], m, interpolation=InterpolationMode.NEAREST, fill=None)
                view.append(F.normalize(F.to_tensor(x), mean, std))
            out.append(torch.stack(view))
        return tuple(out)


class ShardsFailed(RuntimeError):
    """A run the bench timed had failed shards: its rate would be over work that never ran."""


def require_finished(report) -> None:
    """Raise ``ShardsFailed`` naming every failed or unreadable shard and its error."""
    bad = report.unreadable_shards
    if bad:
        lines = "\n".join(f"  {s.status} {s.input}: {s.error}" for s in bad)
        raise ShardsFailed(f"{len(bad)} of {len(report.shards)} shards did not finish:\n{lines}")


def teachers_throughput(args, device: str, teachers=None, work: str | None = None, sampler=None) -> dict:
    """``teachers``: specs to use instead of ``args.teachers``; ``sampler``: a factory of context managers
    with a ``mean`` (e.g. GPU utilisation) wrapped around each timed part."""
    import contextlib

    import torch
    from mobileclip_fastload.reinforce import OpenClipCaptioner, OpenClipSpec, Teacher, reinforce
    from mobileclip_fastload.reinforce.augmentation import draw_augmentations
    from mobileclip_fastload.reinforce.devices import resolve_device
    from mobileclip_fastload.reinforce.open_clip_models import quick_gelu_of
    from mobileclip_fastload.testing.image_text_pairs import make_pair_shards
    from mobileclip_fastload.testing.tiny_models import tiny_specs

    work = work or tempfile.mkdtemp(prefix="bench-reinforce-")
    coca, tiny = tiny_specs(os.path.join(work, "configs"))
    sampler = sampler or contextlib.nullcontext
    if teachers is not None:
        pass
    elif args.teachers == "vit-l":  # random-init twins of DataCompDR's teachers, with their tags' activations
        teachers = tuple(
            OpenClipSpec("ViT-L-14", None, init_seed=k + 1, quick_gelu=quick_gelu_of(spec))
            for k, spec in enumerate(
                (OpenClipSpec("ViT-L-14", "openai"), OpenClipSpec("ViT-L-14", "datacomp_xl_s13b_b90k"))
            )
        )
    else:
        teachers = tiny
    per_shard = max(1, args.images // args.shards)
    shards = make_pair_shards(
        os.path.join(work, "pairs"), num_shards=args.shards, samples_per_shard=per_shard, max_side=args.side
    )
    captioner = OpenClipCaptioner(coca, tag="tiny", num_captions=5, seq_len=8)
    device = resolve_device(device)  # one name for the device: the models built here are the ones reinforce uses
    common = dict(
        teachers=teachers,
        captioners=[captioner],
        num_augmentations=args.J,
        device=device,
        batch_augmented_images=args.batch_augmented_images,
        num_threads=args.num_threads,
        progress=False,
    )
    for store in ("warm-up", "store"):  # captions first (not timed); the warm-up run builds and warms the models
        require_finished(reinforce(shards, os.path.join(work, store), stage="captions", **common))
    require_finished(reinforce(shards, os.path.join(work, "warm-up"), **common))
    models = [Teacher(spec, device, "auto") for spec in teachers]  # the cached builds reinforce used
    with sampler() as ours_util:
        report = reinforce(shards, os.path.join(work, "store"), **common)
    require_finished(report)
    d = report.as_dict()
    ours = d["this_run"]["augmented_images_per_s"]

    # baseline: the same augmentations, Pillow + torchvision in DataLoader workers
    from mobileclip_fastload.ingest.tar_samples import TarSampleReader

    items = []
    for path in shards:
        for raw in TarSampleReader(path):
            uid = json.loads(raw.members["json"])["uid"]
            ext = next(e for e in ("jpg", "png", "webp") if e in raw.members)
            import io

            from PIL import Image

            with Image.open(io.BytesIO(raw.members[ext])) as im:
                w, h = im.size
            items.append((raw.members[ext], draw_augmentations(0, uid, args.J, w, h)))
    views = list(dict.fromkeys((t.view.size, t.view.mean, t.view.std) for t in models))
    loader = torch.utils.data.DataLoader(
        PillowAugDataset(items, views),
        batch_size=max(1, args.batch_augmented_images // args.J),
        num_workers=args.num_threads,
        pin_memory=device.startswith("cuda"),
    )
    n = 0
    with sampler() as baseline_util:
        t0 = time.perf_counter()
        for batch in loader:
            for t in models:
                x = (
                    batch[views.index((t.view.size, t.view.mean, t.view.std))]
                    .flatten(0, 1)
                    .to(device, non_blocking=True)
                )
                t.embed_images(None, x)
            n += x.shape[0]
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        baseline = n / (time.perf_counter() - t0)
    return {
        "device": device,
        "teachers": [t.describe() for t in teachers],
        "augmented_images": d["augmented_images"],
        "ours_aug_per_s": ours,
        "pillow_dataloader_aug_per_s": baseline,
        "ratio": ours / baseline,
        "ours_seconds": {k: d["this_run"][k] for k in ("cpu_replay_seconds", "teacher_seconds")},
        "sampled": (getattr(ours_util, "mean", None), getattr(baseline_util, "mean", None)),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=48)
    p.add_argument("-J", type=int, default=30)
    p.add_argument("--size", type=int, default=224)
    p.add_argument(
        "--side", type=int, default=512, help="longest side of the generated JPEGs (img2dataset's usual 512)"
    )
    p.add_argument(
        "--teachers",
        choices=("none", "tiny", "vit-l"),
        default=None,
        help="teacher part: vit-l on CUDA (default there), tiny on CPU; none skips it",
    )
    p.add_argument("--device", default=None)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--batch-augmented-images", type=int, default=480)
    p.add_argument("--num-threads", type=int, default=len(os.sched_getaffinity(0)), help="default: the usable cores")
    p.add_argument(
        "--cpu-part",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the per-core CPU comparison (default: only without CUDA)",
    )
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.teachers is None:
        args.teachers = "vit-l" if device.startswith("cuda") else "tiny"
    result = {}
    if args.cpu_part if args.cpu_part is not None else not device.startswith("cuda"):
        result["cpu"] = cpu_per_core(sample_pairs(args.images, args.side), args.J, args.size)
        print(json.dumps(result, indent=1), flush=True)
    if args.teachers != "none":
        try:
            result["teachers"] = teachers_throughput(args, device)
        except ShardsFailed as e:
            print(f"bench_reinforce: {e}", file=sys.stderr)
            return 1
        print(json.dumps(result["teachers"], indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
