"""Reinforcement workers on GPUs, checked on the CPU: which device and how many threads each
executor's workers get (process pool, Ray, torchrun with two CPU processes over gloo), and that a
torchrun rank has its process group (with our timeout) before it works."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mobileclip_fastload.ingest.executors import run_tasks
from mobileclip_fastload.ingest.torchrun import GATHER_TIMEOUT_S as TORCHRUN_GATHER_TIMEOUT_S
from mobileclip_fastload.reinforce import devices
from reinforce_worker_probe import ProbeOptions, ProbeTask, probe_task

ROOT = Path(__file__).resolve().parents[1]


def test_process_workers_are_spread_over_the_gpus_with_a_share_of_the_cores():
    p = devices.plan("process", "cuda", cores=16, gpu_count=4)
    assert (p.workers, p.num_threads, p.devices) == (4, 4, ("cuda:0", "cuda:1", "cuda:2", "cuda:3"))
    p = devices.plan("process", "auto", cores=16, gpu_count=2, workers=4)
    assert (p.workers, p.num_threads, p.devices) == (4, 4, ("cuda:0", "cuda:1", "cuda:0", "cuda:1"))
    p = devices.plan("process", "auto", cores=16, gpu_count=0)
    assert (p.workers, p.num_threads, p.devices) == (16, 1, ("cpu",))


def test_torchrun_rank_takes_its_local_gpu_and_its_share_of_the_cores():
    for device in ("auto", "cuda"):
        p = devices.plan("torchrun", device, cores=16, gpu_count=2, local_rank=1, local_world_size=2)
        assert (p.num_threads, p.devices) == (8, ("cuda:1",))
    assert devices.plan("torchrun", "auto", cores=16, gpu_count=0, local_world_size=2).devices == ("cpu",)
    assert devices.plan("inline", "cuda", cores=16, gpu_count=1).devices == ("cuda:0",)  # one name: cuda:0


def test_ray_gpu_tasks_keep_their_worker_and_get_the_cores_of_a_gpu():
    plan, options = devices.ray_plan("auto", {"CPU": 32.0, "GPU": 4.0})
    assert options == {"num_cpus": 8, "num_gpus": 1, "max_calls": 0} and plan.num_threads == 8
    assert plan.devices == ("cuda",)  # resolved in the task: Ray makes its GPU cuda:0 there
    plan, options = devices.ray_plan("auto", {"CPU": 8.0})
    assert options == {"num_cpus": 1} and plan.devices == ("auto",)  # resolved where the task runs


def run_probe(executor: str, opts: ProbeOptions, workers: int, **kw) -> list[dict]:
    got: list = []
    run_tasks(
        executor,
        [ProbeTask(i) for i in range(6)],
        opts,
        workers=workers,
        verify="size",
        on_done=lambda task, result: got.append(result),
        on_progress=lambda *a: None,
        task_fn=probe_task,
        worker_setup=devices.on_worker,
        **kw,
    )
    return [vars(r) for r in got]


def test_process_pool_worker_slots_get_their_own_device_and_thread_count():
    # two distinct device names that need no GPU stand in for cuda:0 / cuda:1 (same mapping code)
    got = run_probe("process", ProbeOptions("cpu", num_threads=1), workers=2, worker_devices=("cpu", "meta"))
    by_pid: dict[int, set] = {}
    for r in got:
        by_pid.setdefault(r["pid"], set()).add(r["device"])
    assert all(len(d) == 1 for d in by_pid.values()), by_pid  # a worker stays on its device
    assert set().union(*by_pid.values()) <= {"cpu", "meta"} and len(by_pid) <= 2
    if len(by_pid) == 2:  # both workers took tasks: distinct slots, distinct devices
        assert set().union(*by_pid.values()) == {"cpu", "meta"}
    assert {r["torch_threads"] for r in got} == {1}


@pytest.mark.slow
def test_ray_tasks_resolve_auto_where_they_run_with_their_threads():
    import ray  # in the test extra: missing is a failure, not a skip

    pythonpath = os.pathsep.join(p for p in sys.path if p)  # the workers import the probe module
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}}
    )
    try:
        plan, options = devices.ray_plan("auto", ray.cluster_resources(), num_threads=2)
        got = run_probe("ray", ProbeOptions(plan.devices[0], plan.num_threads), workers=1, ray_options=options)
    finally:
        ray.shutdown()
    assert {r["device"] for r in got} == {"cpu"} and {r["torch_threads"] for r in got} == {2}
    assert options == {"num_cpus": 2}


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_group_first_threads_shared(tmp_path, models_dir):
    from mobileclip_fastload.testing.image_text_pairs import make_pair_shards

    shards = make_pair_shards(tmp_path / "pairs", num_shards=2, samples_per_shard=3, seed=5)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT / "tests")])}
    with socket.socket() as sock:  # a free port: a fixed one collides with another run of this suite
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=2",
        f"--master-port={port}",
        str(ROOT / "tests" / "reinforce_worker_probe.py"),
        str(tmp_path),
        str(models_dir),
        *map(str, shards),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    cores = len(os.sched_getaffinity(0))
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert seen["device"] == "cpu" and seen["torch_threads"] == max(1, cores // 2)
        assert seen["group"] and seen["timeout_s"] == TORCHRUN_GATHER_TIMEOUT_S
        report = json.loads((tmp_path / f"report{rank}.json").read_text())
        assert report == {"shards": 2, "failed": [], "manifest": rank == 0}
    assert (tmp_path / "store" / "manifest.json").exists()


@pytest.fixture
def models_dir(tmp_path):
    from mobileclip_fastload.testing.tiny_models import write_tiny_configs

    write_tiny_configs(tmp_path / "configs")  # once, before the ranks read them
    return tmp_path / "configs"
