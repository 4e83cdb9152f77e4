"""Conversion throughput (samples/s and MB/s per core) and store size vs source size.

Generates DataCompDR-12M-shaped shards locally (img2dataset-style 512 px JPEGs
(keep_ratio_largest, q95) of real photographs, J=30 augmentations, S=5
synthetic captions, K=2 x D=768 float32 embeddings in npz), converts them with
one worker inline (the per-core number) and with a process pool, and reports
where a worker's time goes. Run from the repository root:

    PYTHONPATH=python python benches/bench_convert.py [--shards 2 --samples-per-shard 150]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import tempfile
import time

from mobileclip_fastload.convert import convert
from mobileclip_fastload.store import Dims
from mobileclip_fastload.testing.datacompdr import make_dataset


def dir_bytes(path: str, suffix: str = "") -> int:
    return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path) if n.endswith(suffix))


def stage_times(profile: cProfile.Profile) -> dict[str, float]:
    """Cumulative seconds in the converter's main stages (from one inline run)."""
    stats = pstats.Stats(profile)
    wanted = {
        "read tar": ("tar_samples.py", "__iter__"),
        "image check (Pillow decode + sha256)": ("images.py", "check_image"),
        "embeddings load (npz/pth.gz)": ("embeddings.py", "load_embeddings"),
        "embeddings encode + error": ("precision.py", "encode"),
        "tokenize": ("tokenizer.py", "tokenize"),
        "aug records": ("aug_records.py", "build_aug_records"),
        "write store shard": ("store_io.py", "write_part"),
    }
    out = {}
    for label, (file, func) in wanted.items():
        total = 0.0
        for (f, _, name), (_, _, _, cum, _) in stats.stats.items():
            if f.endswith(file) and name == func:
                total += cum
        out[label] = round(total, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--samples-per-shard", type=int, default=150)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--emb-format", default="npz", choices=("npz", "npz-deflated", "pth.gz"))
    ap.add_argument("--J", type=int, default=30)
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one, removed after)")
    args = ap.parse_args()

    work = args.dir or tempfile.mkdtemp(prefix="bench_convert-")
    try:
        t = time.perf_counter()
        ds = make_dataset(
            os.path.join(work, "src"),
            num_shards=args.shards,
            samples_per_shard=args.samples_per_shard,
            layout="joined",
            emb_format=args.emb_format,
            json_mode="merged",
            dims=Dims(J=args.J, S=5, K=2, D=768),
            image_size=(300, 1000),
            resized_fraction=1.0,
            resize_to=512,
            long_caption_fraction=0.05,
            seed=0,
        )
        gen_s = time.perf_counter() - t
        src_bytes = sum(os.path.getsize(p) for p in ds.dr_shards)
        n = len(ds.samples)
        results = {
            "samples": n,
            "source_mb": round(src_bytes / 1e6, 2),
            "generate_s": round(gen_s, 1),
            "emb_format": args.emb_format,
            "J": args.J,
            "runs": [],
        }

        def run(name, **kw):
            out = os.path.join(work, name)
            shutil.rmtree(out, ignore_errors=True)
            t0, c0 = time.perf_counter(), time.process_time()
            report = convert(ds.dr_shards, out, progress=False, **kw)
            secs, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert report.samples_written == n, report.summary()
            workers = report.workers if kw.get("executor") != "inline" else 1
            store = dir_bytes(out, ".arrow")
            row = {
                "run": name,
                "workers": workers,
                "seconds": round(secs, 2),
                "samples_per_s": round(n / secs, 1),
                "samples_per_s_per_core": round(n / secs / workers, 1),
                "mb_per_s_per_core": round(src_bytes / 1e6 / secs / workers, 1),
                "store_mb": round(store / 1e6, 2),
                "store_over_source": round(store / src_bytes, 3),
                # inline runs only: this process's CPU time, robust to other load on the machine
                **(
                    {
                        "cpu_seconds": round(cpu, 2),
                        "samples_per_cpu_s": round(n / cpu, 1),
                        "mb_per_cpu_s": round(src_bytes / 1e6 / cpu, 1),
                    }
                    if kw.get("executor") == "inline"
                    else {}
                ),
                "cosine_error_max": report.cosine_error["max"],
            }
            results["runs"].append(row)
            print(json.dumps(row))
            return report

        profile = cProfile.Profile()
        profile.enable()
        run("inline-float16", executor="inline")
        profile.disable()
        results["inline_stage_seconds"] = stage_times(profile)
        print(json.dumps({"inline_stage_seconds": results["inline_stage_seconds"]}))
        run("inline-float16-noprof", executor="inline")
        run("process-float16", executor="process", workers=args.workers)
        run("inline-bfloat16", executor="inline", embedding_dtype="bfloat16")
        run("inline-int8", executor="inline", embedding_dtype="int8")
        print(json.dumps(results, indent=1))
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
