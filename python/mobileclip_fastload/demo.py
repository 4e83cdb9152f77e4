"""The end-to-end demo on a small embedded sample: real photographs (shipped in
the package, `mobileclip_fastload.sample_photos`) as DataCompDR WebDataset
shards -> `convert` -> DR store -> `verify` -> `FastReinforcedLoader`, with
every image of the first batches
checked bit-for-bit against the Pillow + torchvision reference replay of the
*source* sample (its image bytes and its upstream `param_aug` entry), so the
check covers the conversion as well as the loader."""

from __future__ import annotations

import glob
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def run_demo(
    workdir: str | os.PathLike[str] | None = None,
    *,
    samples: int = 48,
    batch_size: int = 16,
    workers: int = 2,
    num_threads: int = 2,
    check_batches: int = 2,
) -> int:
    from mobileclip_fastload import FastReinforcedLoader, Store
    from mobileclip_fastload.convert import convert
    from mobileclip_fastload.loader import TRAINING_INTERPOLATION
    from mobileclip_fastload.pixel_reference import describe, differing_versions, install_command, installed_versions
    from mobileclip_fastload.reference import reference_replay
    from mobileclip_fastload.sample_photos import load_all
    from mobileclip_fastload.testing.datacompdr import expected_box, make_dataset

    with tempfile.TemporaryDirectory(prefix="mobileclip-fastload-demo-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        shards = 2
        print(
            f"1. writing {samples} DataCompDR-format samples ({shards} WebDataset"
            f" shards, the package's sample photographs) to {root / 'src'}"
        )
        data = make_dataset(
            root / "src",
            num_shards=shards,
            samples_per_shard=samples // shards,
            layout="joined",
            image_size=(96, 256),
            photos=load_all(),
        )
        print("2. converting them into a DR store")
        # The demo remakes its own inputs each run, so it replaces the store of an earlier run in --workdir.
        report = convert(
            sorted(glob.glob(str(root / "src" / "dr" / "*.tar"))),
            root / "store",
            workers=workers,
            progress=False,
            overwrite=True,
        )
        print("   " + report.summary().replace("\n", "\n   "))
        store = Store(root / "store")
        problems = store.verify()
        print(
            f"3. verify: {len(store)} samples in {store.num_shards} shard(s), dims {store.dims}, "
            f"{'all checksums match' if not problems else f'{len(problems)} problem(s)'}"
        )
        if problems:
            for p in problems:
                print("   " + p)
            return 1
        by_uid = data.by_uid()
        print(f"4. FastReinforcedLoader: batch {batch_size}, 256 px {TRAINING_INTERPOLATION}, {num_threads} threads")
        loader = FastReinforcedLoader(
            root / "store", batch_size, image_size=256, image_dtype="uint8", num_threads=num_threads, seed=0
        )
        t0 = time.perf_counter()
        checked = worst = delivered = 0
        for n, batch in enumerate(loader):
            delivered += len(batch)
            if n < check_batches:
                for r in range(len(batch)):
                    i, j = int(batch.index[r]), int(batch.aug_index[r])
                    src = by_uid[store.uid(i)]
                    entry = src.param_aug[j]
                    if entry is not None and src.resized:  # boxes are drawn on the original image
                        entry = [
                            expected_box(
                                entry[0], (src.orig_width, src.orig_height), (src.stored_width, src.stored_height)
                            ),
                            entry[1],
                        ]
                    ref = reference_replay(src.stored_image, entry, 256, TRAINING_INTERPOLATION)
                    got = batch.images[r].permute(1, 2, 0).numpy()
                    worst = max(worst, int(np.abs(got.astype(np.int16) - ref.astype(np.int16)).max()))
                    checked += 1
        elapsed = time.perf_counter() - t0
        first = next(iter(loader))
        print(
            f"   one epoch: {delivered} samples in {len(loader)} batches, {elapsed:.2f}s including the reference checks"
        )
        print(
            "   batch fields: "
            + ", ".join(
                f"{k} {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
                for k, v in vars(first).items()
                if hasattr(v, "shape")
            )
        )
        print(
            f"   pixel check vs {describe(installed_versions())} on"
            f" the source samples ({checked}): max |diff| = {worst}"
        )
        if worst and differing_versions():
            print(
                f"   the loader's pixels equal {describe()}'s, not the installed versions': "
                f"{install_command()} to compare against the reference"
            )
        return 0 if worst == 0 else 1
