"""Resumable, crash-safe conversion; the process pool and Ray give the same store."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mobileclip_fastload import StoreExistsError, _core
from mobileclip_fastload.convert import convert
from mobileclip_fastload.testing.datacompdr import make_dataset, open_store

DONE = "_convert_done"


def shard_files(out):
    store = open_store(out)
    return [(s["file"], s["file_xxh3"]) for s in map(store.shard_entry, range(store.num_shards))]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    return make_dataset(root / "src", num_shards=3, samples_per_shard=4, layout="joined", seed=31)


def test_rerun_skips_finished_shards_and_redoes_damaged_ones(dataset, tmp_path):
    out = str(tmp_path / "store")
    first = convert(dataset.dr_shards, out, executor="inline", progress=False)
    files = shard_files(out)
    stamps = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f, _ in files}

    again = convert(dataset.dr_shards, out, executor="inline", progress=False)
    assert [s.status for s in again.shards] == ["resumed"] * 3
    assert again.samples_written == first.samples_written == 12
    assert shard_files(out) == files
    assert {f: os.stat(os.path.join(out, f)).st_mtime_ns for f, _ in files} == stamps

    # same size, one byte changed: only the checksum notices
    damaged = os.path.join(out, files[1][0])
    data = bytearray(Path(damaged).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(damaged).write_bytes(bytes(data))
    by_size = convert(dataset.dr_shards, out, executor="inline", progress=False, verify_resumed="size")
    assert [s.status for s in by_size.shards] == ["resumed"] * 3
    fixed = convert(dataset.dr_shards, out, executor="inline", progress=False)
    assert [s.status for s in fixed.shards] == ["resumed", "converted", "resumed"]
    assert shard_files(out) == files  # deterministic output: the same bytes again
    assert open_store(out).verify() == []

    # a converted input deleted afterwards: its conversion is kept, not lost
    moved = dataset.dr_shards[2] + ".moved"
    os.rename(dataset.dr_shards[2], moved)
    try:
        gone = convert(dataset.dr_shards, out, executor="inline", progress=False)
    finally:
        os.rename(moved, dataset.dr_shards[2])
    assert [s.status for s in gone.shards] == ["resumed"] * 3 and "no longer readable" in gone.shards[2].tar_problem
    assert shard_files(out) == files

    # other options replace the finished store only when told to; then every shard is redone
    with pytest.raises(StoreExistsError, match="finished store"):
        convert(dataset.dr_shards, out, executor="inline", progress=False, embedding_dtype="bfloat16")
    bf16 = convert(
        dataset.dr_shards, out, executor="inline", progress=False, embedding_dtype="bfloat16", overwrite=True
    )
    assert [s.status for s in bf16.shards] == ["converted"] * 3
    assert open_store(out).embedding_dtype == "bfloat16"


def test_interrupted_run_leaves_stale_files_that_a_rerun_replaces(dataset, tmp_path):
    out = str(tmp_path / "store")
    convert(dataset.dr_shards, out, executor="inline", progress=False)
    files = shard_files(out)
    # as if killed while converting shard 1: no done record, a writer temp file, an extra old part
    os.unlink(os.path.join(out, DONE, "00000001.json"))
    os.unlink(os.path.join(out, "manifest.json"))
    Path(out, ".00000001-000.arrow.tmp-123-deadbeef").write_bytes(b"partial")
    Path(out, "00000001-007.arrow").write_bytes(b"old part")
    report = convert(dataset.dr_shards, out, executor="inline", progress=False)
    assert [s.status for s in report.shards] == ["resumed", "converted", "resumed"]
    assert shard_files(out) == files
    names = set(os.listdir(out))
    assert "00000001-007.arrow" not in names and not any(".tmp-" in n for n in names)
    assert open_store(out).verify() == []


@pytest.mark.slow
def test_killed_process_leaves_only_complete_shards(dataset, tmp_path):
    """SIGKILL a conversion after its first shard is done: every visible shard file is complete
    (the reader accepts it), there is no manifest, and a re-run finishes the store."""
    out = str(tmp_path / "store")
    script = (
        "import sys, time\n"
        "from mobileclip_fastload.ingest import resume\n"
        "real = resume.write_json_atomic\n"
        "def slow(path, obj):\n"
        "    real(path, obj)\n"
        "    time.sleep(30)  # park after the first done record, so the kill lands mid-run\n"
        "resume.write_json_atomic = slow  # the done records' writer\n"
        "from mobileclip_fastload.convert import convert\n"
        f"convert({dataset.dr_shards!r}, {out!r}, executor='inline', progress=False)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(out, DONE, "00000000.json")):
            assert proc.poll() is None, "converter exited early"
            assert time.monotonic() < deadline, "no shard finished within 60 s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not os.path.exists(os.path.join(out, "manifest.json"))
    for name in os.listdir(out):
        if name.endswith(".arrow"):
            _core.store_shard_info(os.path.join(out, name))  # raises on a half-written file
    report = convert(dataset.dr_shards, out, executor="inline", progress=False)
    assert [s.status for s in report.shards] == ["resumed", "converted", "converted"]
    assert len(open_store(out)) == 12


def test_process_pool_matches_inline(dataset, tmp_path):
    inline = str(tmp_path / "inline")
    pooled = str(tmp_path / "pooled")
    convert(dataset.dr_shards, inline, executor="inline", progress=False)
    report = convert(dataset.dr_shards, pooled, executor="process", workers=2, progress=False)
    assert report.executor == "process" and report.workers == 2
    assert shard_files(pooled) == shard_files(inline)


@pytest.mark.slow
def test_ray_matches_inline(dataset, tmp_path):
    # Ray is in the test extra: a missing or broken Ray is a failure, not a skip.
    import ray

    inline = str(tmp_path / "inline")
    convert(dataset.dr_shards, inline, executor="inline", progress=False)
    pythonpath = os.pathsep.join(p for p in sys.path if p)
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}}
    )
    try:
        out = str(tmp_path / "ray")
        report = convert(dataset.dr_shards, out, executor="ray", progress=False)
        assert report.executor == "ray"
        assert [s.status for s in report.shards] == ["converted"] * 3
        assert shard_files(out) == shard_files(inline)
    finally:
        ray.shutdown()
