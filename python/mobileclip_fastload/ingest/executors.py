"""Running shard tasks: in this process, on a local process pool, on Ray, or as torchrun ranks.

All of them run the same task function (``run_shard_task`` for ``convert``;
``reinforce`` passes its own, a module-level function called as
``task_fn(task, opts, verify=..., progress=...)``); results come back as report
objects in completion order through ``on_done`` and progress deltas through
``on_progress(task_index, bytes, samples)``.

* ``"process"``: ``ProcessPoolExecutor`` on a ``forkserver`` context (no fork of
  a parent that may hold threads or torch state; the server pre-imports the
  converter once so workers start fast). Workers stream progress through a queue,
  exit as soon as the converting process is gone (killed, even by SIGKILL), and
  are terminated when it stops on an exception (Ctrl-C included).
* ``"ray"``: one Ray task per shard (``num_cpus=1``), on the cluster that
  ``ray.init`` connects to (an existing one, or a local instance it starts).
  Progress is per finished shard. Needs the optional ``ray`` extra.
* ``"inline"``: sequential, in this process (debugging, tiny inputs).
* ``"torchrun"``: this process is one rank; it runs the share of the tasks it is given
  (``torchrun.Ranks.mine``) inline; the tool gathers the reports (``Ranks.gather``).

``worker_setup(opts, device)`` (a module-level function; reinforce's
``devices.on_worker``) runs in the worker before each task and returns the options
the task gets: it places the worker on its device and sets its thread count.
``worker_devices``: process worker slot i gets ``worker_devices[i % len]`` (each
worker takes a distinct slot when it starts); inline gets the first; Ray tasks get
None (Ray assigns GPUs itself).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from mobileclip_fastload.ingest.parent_watch import exit_when_gone

EXECUTORS = ("inline", "process", "ray", "torchrun")
OnDone = Callable[[Any, Any], None]  # (task, its report)
OnProgress = Callable[[int, int, int], None]
TaskFn = Callable[..., Any]
WorkerSetup = Callable[[Any, "str | None"], Any]


def run_tasks(
    executor: str,
    tasks: Sequence[Any],
    opts: Any,
    *,
    workers: int,
    verify: str,
    on_done: OnDone,
    on_progress: OnProgress,
    task_fn: TaskFn,
    ray_options: dict | None = None,
    worker_setup: WorkerSetup | None = None,
    worker_devices: Sequence[str] | None = None,
    preload: Sequence[str] = (),
) -> None:
    """``ray_options``: extra ``ray.remote`` options per task (e.g. ``{"num_gpus": 1, "max_calls": 0}``).
    ``preload``: modules the process pool's forkserver imports once, so its workers start with them loaded."""
    devices = tuple(worker_devices or (None,))
    if executor in ("inline", "torchrun") or (executor == "process" and (workers <= 1 or len(tasks) <= 1)):
        if worker_setup is not None:
            opts = worker_setup(opts, devices[0])
        for t in tasks:
            on_done(t, task_fn(t, opts, verify=verify, progress=lambda b, s, i=t.index: on_progress(i, b, s)))
    elif executor == "process":
        _run_process_pool(
            tasks,
            opts,
            workers=workers,
            verify=verify,
            on_done=on_done,
            on_progress=on_progress,
            task_fn=task_fn,
            worker_setup=worker_setup,
            devices=devices,
            preload=preload,
        )
    elif executor == "ray":
        _run_ray(
            tasks,
            opts,
            verify=verify,
            on_done=on_done,
            on_progress=on_progress,
            task_fn=task_fn,
            ray_options=ray_options,
            worker_setup=worker_setup,
        )
    else:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ----------------------------------------------------------------------------- process pool
_progress_queue = None
_worker_device: str | None = None


def _init_worker(q, parent_pid: int, slots=None, devices: tuple = (None,)) -> None:
    global _progress_queue, _worker_device
    _progress_queue = q
    if slots is not None:  # a distinct slot per worker: worker i on devices[i % len]
        _worker_device = devices[slots.get() % len(devices)]
    exit_when_gone(parent_pid)


def _pool_task(task_fn: TaskFn, task, opts, verify: str, worker_setup: WorkerSetup | None = None):
    q = _progress_queue
    if worker_setup is not None:
        opts = worker_setup(opts, _worker_device)

    def progress(nbytes: int, nsamples: int) -> None:
        if q is not None:
            q.put((task.index, nbytes, nsamples))

    return task_fn(task, opts, verify=verify, progress=progress)


def _context(preload: Sequence[str] = ()):
    if sys.platform != "win32" and "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return mp.get_context("spawn")


def _run_process_pool(
    tasks,
    opts,
    *,
    workers,
    verify,
    on_done,
    on_progress,
    task_fn,
    worker_setup=None,
    devices=(None,),
    preload: Sequence[str] = (),
) -> None:
    ctx = _context(preload)
    q = ctx.Queue()
    n = min(workers, len(tasks))
    slots = None
    if worker_setup is not None:
        slots = ctx.Queue()
        for i in range(n):
            slots.put(i)

    def drain() -> None:
        while True:
            try:
                index, nbytes, nsamples = q.get_nowait()
            except queue_mod.Empty:
                return
            on_progress(index, nbytes, nsamples)

    pool = ProcessPoolExecutor(
        max_workers=n, mp_context=ctx, initializer=_init_worker, initargs=(q, os.getpid(), slots, devices)
    )
    try:
        pending = {pool.submit(_pool_task, task_fn, t, opts, verify, worker_setup): t for t in tasks}
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            drain()
            for fut in done:
                task = pending.pop(fut)
                on_done(task, fut.result())
        drain()
    except BaseException:
        _stop_now(pool)  # else the interpreter's exit waits for the running shards
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        q.close()
        if slots is not None:
            slots.close()


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued shards and end the running ones at once."""
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    workers = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for p in workers:
        if p.is_alive():
            p.terminate()


# ----------------------------------------------------------------------------- ray
def ray_cluster_resources() -> dict:
    """The Ray cluster's resources (``{"CPU": ..., "GPU": ...}``), connecting to it (or starting a local one) first."""
    try:
        import ray
    except ImportError as e:
        raise ImportError("executor='ray' needs Ray: pip install 'mobileclip-fastload[ray]'") from e
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    return dict(ray.cluster_resources())


def _run_ray(tasks, opts, *, verify, on_done, on_progress, task_fn, ray_options, worker_setup=None) -> None:
    import ray

    ray_cluster_resources()
    remote = ray.remote(**{"num_cpus": 1, "max_retries": 2, **(ray_options or {})})(_ray_task)
    refs = {remote.remote(task_fn, t, opts, verify, worker_setup): t for t in tasks}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
        for ref in done:
            task = refs[ref]
            report = ray.get(ref)
            on_progress(task.index, report.bytes_in, report.samples_in)
            on_done(task, report)


def _ray_task(task_fn: TaskFn, task, opts, verify: str, worker_setup: WorkerSetup | None = None):
    if worker_setup is not None:
        opts = worker_setup(opts, None)
    return task_fn(task, opts, verify=verify)
