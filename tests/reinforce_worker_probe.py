"""Picklable pieces for the executor tests (worker processes and Ray tasks import this module):
a task function that reports where it ran, and a torchrun entry point running `reinforce` with a
captioner that records, at work time, what its rank looked like."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeTask:
    index: int


@dataclass(frozen=True)
class ProbeOptions:
    device: str
    num_threads: int


@dataclass(frozen=True)
class ProbeResult:
    pid: int
    device: str
    torch_threads: int
    bytes_in: int = 0  # what the executors read from a shard report
    samples_in: int = 0


def probe_task(task: ProbeTask, opts: ProbeOptions, *, verify: str, progress=None) -> ProbeResult:
    """What a worker's task sees: its process, its options' device, torch's thread count."""
    import torch

    return ProbeResult(os.getpid(), opts.device, torch.get_num_threads())


def torchrun_main(out: str, shards: list[str], configs: str) -> None:
    """One torchrun rank: `reinforce` (executor torchrun, device auto) with tiny models; its captioner
    writes, while the rank works, the device it was given, torch's threads and whether the gloo group
    already exists (it must: a rank that finishes early then waits for the others within its timeout)."""
    import torch
    import torch.distributed as dist
    from mobileclip_fastload.reinforce import reinforce
    from mobileclip_fastload.reinforce.captioners import Captioner
    from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec

    class RecordingCaptioner(Captioner):
        tag, num_captions = "probe", 1

        def fingerprint(self) -> dict:
            return {"kind": "probe"}

        def caption(self, images, seeds, device):
            group = dist.is_initialized()
            timeout = None
            if group:
                pg = dist.distributed_c10d._get_default_group()
                timeout = pg._get_backend(torch.device("cpu")).options._timeout
            record = {
                "device": device,
                "torch_threads": torch.get_num_threads(),
                "group": group,
                "timeout_s": timeout.total_seconds() if timeout else None,
            }
            with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as f:
                json.dump(record, f)
            return [["a photo"] for _ in images]

    teacher = OpenClipSpec("tiny-clip-a", None, os.path.join(configs, "tiny-clip-a.json"), init_seed=2)
    report = reinforce(
        shards,
        os.path.join(out, "store"),
        teachers=[teacher],
        captioners=[RecordingCaptioner()],
        num_augmentations=2,
        executor="torchrun",
        device="auto",
        progress=False,
    )
    with open(os.path.join(out, f"report{os.environ['RANK']}.json"), "w") as f:
        json.dump(
            {
                "shards": len(report.shards),
                "failed": [s.error for s in report.unreadable_shards],
                "manifest": report.manifest_written,
            },
            f,
        )


if __name__ == "__main__":
    torchrun_main(sys.argv[1], sys.argv[3:], sys.argv[2])
