"""Killing `convert` (SIGTERM or SIGKILL, or SIGINT to the main process alone)
leaves no process of the run behind (forkserver, pool workers, resource
tracker), and the next run removes the temporary files that the killed
processes left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from mobileclip_fastload.convert import convert
from mobileclip_fastload.testing.datacompdr import make_dataset, open_store

DONE = "_convert_done"
SHARDS, PER_SHARD = 8, 24


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    return make_dataset(root / "src", num_shards=SHARDS, samples_per_shard=PER_SHARD, layout="joined", seed=5)


def session_processes(sid: int) -> list[psutil.Process]:
    """Live processes of session `sid` (zombies have exited; only their parent has not reaped them)."""
    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return out


def describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            out.append(str(p.pid))
    return out


def done_records(out: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(os.path.join(out, DONE)) if n.endswith(".json"))
    except FileNotFoundError:
        return []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT], ids=["SIGTERM", "SIGKILL", "SIGINT"])
def test_killing_convert_leaves_no_process_behind(dataset, tmp_path, sig):
    out = str(tmp_path / "store")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = [
        sys.executable,
        "-m",
        "mobileclip_fastload",
        "convert",
        *dataset.dr_shards,
        "-o",
        out,
        "-j",
        "2",
        "--no-progress",
        "-q",
    ]
    # Its own session: every process the run starts (forkserver, workers, resource tracker) stays in it.
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sid = proc.pid
    try:
        deadline = time.monotonic() + 120
        while not done_records(out):  # workers are converting
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no shard finished within 120 s"
            time.sleep(0.05)
        running = session_processes(sid)
        assert len(running) >= 4, describe(running)  # main, forkserver, 2 workers (+ resource tracker)
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while (left := session_processes(sid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"still running {5} s after {sig.name}: {describe(left)}"
        finished = done_records(out)
        time.sleep(1.0)
        assert done_records(out) == finished, "shards were still being finished after the kill"
        assert len(finished) < SHARDS, "the run was not interrupted"
    finally:
        for p in session_processes(sid):  # only processes of the run this test started
            with contextlib.suppress(psutil.Error):
                p.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    if sig != signal.SIGKILL:
        return  # the re-run below is the same after any signal
    # Leftovers of killed writers (their pid is gone) are removed by the next run; a temporary
    # file of a live process (as if another run were writing it) is not touched.
    os.makedirs(os.path.join(out, DONE), exist_ok=True)
    stale = [
        os.path.join(out, DONE, f"00000007.json.tmp-{proc.pid}"),
        os.path.join(out, f".00000007-000.arrow.tmp-{proc.pid}-0123abcd"),
    ]
    live = os.path.join(out, DONE, f"00000099.json.tmp-{os.getpid()}")
    for p in [*stale, live]:
        with open(p, "w") as f:
            f.write("{partial")
    report = convert(dataset.dr_shards, out, workers=2, progress=False)
    assert report.samples_written == SHARDS * PER_SHARD
    assert len(open_store(out)) == SHARDS * PER_SHARD
    assert not any(os.path.exists(p) for p in stale)
    assert os.path.exists(live)
    leftovers = [n for d in (out, os.path.join(out, DONE)) for n in os.listdir(d) if ".tmp-" in n]
    assert leftovers == [os.path.basename(live)]
