"""Which device and how many CPU threads each reinforcement worker gets.

Decided once per executor in the driver (``plan``), applied in each worker before
its first task (``on_worker``):

* ``inline``: one task at a time on the device, all cores for the replay.
* ``process``: on CUDA one worker per visible GPU (worker slot i on ``cuda:i``), not
  one per core (every worker on ``cuda:0`` runs out of memory); the cores are split
  between the workers.
* ``ray``: ``"auto"`` is resolved in the task, where the GPU is (the driver may have
  none); Ray gives each GPU task its GPU as ``cuda:0`` (``CUDA_VISIBLE_DEVICES``).
* ``torchrun``: rank ``LOCAL_RANK`` on ``cuda:LOCAL_RANK`` (``"auto"`` and ``"cuda"``
  both), ``torch.cuda.set_device`` before any work, the cores split between the
  ranks of the node.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerPlan:
    workers: int  # processes (process executor); 1 otherwise
    num_threads: int  # replay threads and torch intra-op threads per worker
    devices: tuple[str, ...]  # worker slot i runs on devices[i % len(devices)]


def resolve_device(device: str, index: int = 0, gpu_count: int | None = None) -> str:
    """``"auto"``: CUDA where available, else the CPU; ``"cuda"``: ``cuda:<index mod GPUs>``; others as given."""
    if device not in ("auto", "cuda"):
        return device
    if gpu_count is None:
        import torch

        gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "auto" and gpu_count == 0:
        return "cpu"
    return f"cuda:{index % gpu_count}" if gpu_count else "cuda"


def is_cuda(device: str) -> bool:
    return device.split(":")[0] == "cuda"


def plan(
    executor: str,
    device: str,
    *,
    cores: int,
    gpu_count: int,
    workers: int | None = None,
    num_threads: int | None = None,
    local_rank: int = 0,
    local_world_size: int = 1,
) -> WorkerPlan:
    """Workers, threads and devices for ``executor`` on a node with ``cores`` CPUs and ``gpu_count`` GPUs."""
    if executor == "process":
        on_gpu = is_cuda(resolve_device(device, 0, gpu_count))
        n = int(workers) if workers is not None else (gpu_count if on_gpu else cores)
        n = max(1, n)
        devices = (
            tuple(resolve_device(device, i, gpu_count) for i in range(n))
            if on_gpu
            else (resolve_device(device, 0, gpu_count),)
        )
        return WorkerPlan(n, _threads(num_threads, cores, n), devices)
    if executor == "ray":
        return ray_plan(device, {"CPU": cores, "GPU": gpu_count}, num_threads)[0]
    if executor == "torchrun":
        return WorkerPlan(
            1, _threads(num_threads, cores, local_world_size), (resolve_device(device, local_rank, gpu_count),)
        )
    return WorkerPlan(1, _threads(num_threads, cores, 1), (resolve_device(device, 0, gpu_count),))


def ray_plan(device: str, resources: dict, num_threads: int | None = None) -> tuple[WorkerPlan, dict]:
    """(plan, ``ray.remote`` options) for a cluster with ``resources`` (``ray.cluster_resources()``).
    GPU tasks (CUDA asked, or ``"auto"`` on a cluster with GPUs) take one GPU, the cluster's CPUs per GPU
    as replay threads (one thread cannot feed a GPU), and ``max_calls=0``: Ray's default of 1 for GPU
    tasks would start a fresh worker, and build every model again, for every shard. ``"auto"`` stays
    unresolved: the task resolves it where it runs (the driver may have no GPU)."""
    gpus = int(resources.get("GPU", 0))
    on_gpu = is_cuda(device) or (device == "auto" and gpus > 0)
    if num_threads is None:
        num_threads = max(1, int(resources.get("CPU", 1)) // gpus) if on_gpu and gpus else 1
    num_threads = max(1, int(num_threads))
    options: dict = {"num_cpus": num_threads}
    if on_gpu:
        options.update(num_gpus=1, max_calls=0)
    return WorkerPlan(1, num_threads, ("cuda" if on_gpu and device == "auto" else device,)), options


def _threads(num_threads: int | None, cores: int, sharing: int) -> int:
    return max(1, int(num_threads)) if num_threads is not None else max(1, cores // max(1, sharing))


def place(opts, device: str | None = None):
    """This worker's device (``device``, else ``opts.device`` resolved here), made current on CUDA."""
    import torch

    device = resolve_device(device if device is not None else opts.device)
    if is_cuda(device):
        torch.cuda.set_device(device)
    return dataclasses.replace(opts, device=device) if device != opts.device else opts


def make_current(device: str) -> None:
    """On CUDA, make ``device`` the current GPU (a torchrun rank's, before its process group is made)."""
    if is_cuda(device):
        import torch

        torch.cuda.set_device(device)


def on_worker(opts, device: str | None = None):
    """In a worker process (process pool, Ray task, torchrun rank), before its tasks: ``place`` it, and
    torch's intra-op threads = ``opts.num_threads`` (its share of the cores, not all of them)."""
    import torch

    opts = place(opts, device)
    if torch.get_num_threads() != opts.num_threads:
        torch.set_num_threads(opts.num_threads)
    return opts


def device_fingerprint(device: str) -> dict:
    """What of the device a result depends on: its type and, on CUDA, the GPU model (CUDA's
    random streams and bf16 kernels differ between GPU models) and the torch / CUDA versions."""
    import torch

    if not is_cuda(device):
        return {"type": device.split(":")[0], "torch": torch.__version__}
    return {
        "type": "cuda",
        "gpu": torch.cuda.get_device_name(torch.device(device)),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
