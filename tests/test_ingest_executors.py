"""Every executor of both ingest tools (process pool, a local Ray, torchrun with two CPU ranks over
gloo) gives the store the inline run gives: the same shard files, byte for byte, and the same manifest
(less convert's creation time)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from ingest_executor_runs import run_convert, run_reinforce
from mobileclip_fastload import Store
from mobileclip_fastload.testing.datacompdr import make_dataset
from mobileclip_fastload.testing.image_text_pairs import make_pair_shards
from mobileclip_fastload.testing.tiny_models import write_tiny_configs

ROOT = Path(__file__).resolve().parents[1]


def store_contents(out) -> tuple[dict[str, bytes], dict]:
    """(shard file -> bytes, manifest without convert's creation time)."""
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.get("metadata", {}).get("converter", {}).pop("created", None)
    files = {p.name: p.read_bytes() for p in sorted(out.glob("*.arrow"))}
    store = Store(out)  # schema 2: the shard entries (names included) are in shards.idx
    assert files and sorted(files) == sorted(store.shard_entry(n)["file"] for n in range(store.num_shards))
    files["shards.idx"] = (out / "shards.idx").read_bytes()
    return files, manifest


def assert_same_store(out, reference) -> None:
    files, manifest = store_contents(out)
    ref_files, ref_manifest = store_contents(reference)
    assert sorted(files) == sorted(ref_files)
    assert all(files[name] == ref_files[name] for name in files), "a shard file differs from the inline run's"
    assert manifest == ref_manifest


@pytest.fixture(scope="module")
def dr_shards(tmp_path_factory):
    return make_dataset(
        tmp_path_factory.mktemp("dr") / "src", num_shards=3, samples_per_shard=4, layout="joined", seed=31
    ).dr_shards


@pytest.fixture(scope="module")
def converted(tmp_path_factory, dr_shards):
    out = tmp_path_factory.mktemp("convert") / "inline"
    run_convert(dr_shards, out, "inline")
    return out


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("configs")
    write_tiny_configs(folder)  # once, before any worker or rank reads them
    return str(folder)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return [
        str(p) for p in make_pair_shards(tmp_path_factory.mktemp("pairs"), num_shards=3, samples_per_shard=3, seed=3)
    ]


@pytest.fixture(scope="module")
def reinforced(tmp_path_factory, pairs, configs):
    # In a fresh process, as every other executor's workers are: the CoCa captions of an inline run in a
    # long-lived process depend on what ran there before (seen after a Ray driver started and stopped).
    out = tmp_path_factory.mktemp("reinforce") / "inline"
    fresh_process(["reinforce", "inline", str(out), configs, *pairs])
    return out


@pytest.fixture
def local_ray():
    # Ray is in the test extra: a missing or broken Ray is a failure, not a skip.
    import ray

    pythonpath = os.pathsep.join(p for p in sys.path if p)
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}}
    )
    yield
    ray.shutdown()


def fresh_process(args: list[str], launcher: tuple[str, ...] = ()) -> None:
    """``tests/ingest_executor_runs.py ARGS`` in a fresh interpreter (under ``launcher``, e.g. torchrun)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT / "tests")])}
    cmd = [sys.executable, *launcher, str(ROOT / "tests" / "ingest_executor_runs.py"), *map(str, args)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def torchrun(tool: str, out, configs: str, inputs) -> None:
    with socket.socket() as s:  # a free port for the ranks' rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = ("-m", "torch.distributed.run", "--nproc-per-node=2", f"--master-port={port}")
    fresh_process([tool, "torchrun", str(out), configs, *map(str, inputs)], launcher)


def assert_torchrun_gives(tool: str, inputs, reference, out, configs: str) -> None:
    """``tool`` under torchrun with two CPU ranks: all three shards done, rank 0's report and manifest, the
    inline store."""
    torchrun(tool, out, configs, inputs)
    report = json.loads((out / f"{tool}_report.json").read_text())
    done = "converted" if tool == "convert" else "done"
    assert report["executor"] == "torchrun" and report["workers"] == 2 and report["shards"][done] == 3
    assert_same_store(out, reference)


# ----------------------------------------------------------------------------- convert
def test_convert_process_pool_gives_the_inline_store(dr_shards, converted, tmp_path):
    report = run_convert(dr_shards, tmp_path / "process", "process", workers=2)
    assert report.executor == "process" and report.workers == 2
    assert_same_store(tmp_path / "process", converted)


@pytest.mark.slow
def test_convert_ray_gives_the_inline_store(dr_shards, converted, tmp_path, local_ray):
    report = run_convert(dr_shards, tmp_path / "ray", "ray")
    assert [s.status for s in report.shards] == ["converted"] * 3
    assert_same_store(tmp_path / "ray", converted)


@pytest.mark.slow
def test_convert_torchrun_two_cpu_ranks_give_the_inline_store(dr_shards, converted, tmp_path, configs):
    assert_torchrun_gives("convert", dr_shards, converted, tmp_path / "torchrun", configs)


# ----------------------------------------------------------------------------- reinforce
@pytest.mark.slow
def test_reinforce_process_pool_gives_the_inline_store(pairs, configs, reinforced, tmp_path):
    report = run_reinforce(pairs, tmp_path / "process", "process", configs, workers=2)
    assert report.executor == "process" and report.workers == 2
    assert [s.status for s in report.shards] == ["converted"] * 3
    assert_same_store(tmp_path / "process", reinforced)


@pytest.mark.slow
def test_reinforce_ray_gives_the_inline_store(pairs, configs, reinforced, tmp_path, local_ray):
    report = run_reinforce(pairs, tmp_path / "ray", "ray", configs)
    assert [s.status for s in report.shards] == ["converted"] * 3
    assert_same_store(tmp_path / "ray", reinforced)


@pytest.mark.slow
def test_reinforce_torchrun_two_cpu_ranks_give_the_inline_store(pairs, configs, reinforced, tmp_path):
    assert_torchrun_gives("reinforce", pairs, reinforced, tmp_path / "torchrun", configs)
