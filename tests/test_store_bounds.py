"""A manifest is someone else's data: every count it claims is checked against the bytes that must
exist, sums are overflow-checked, and the manifest itself has a size limit, read incrementally,
locally and from object storage (docs/FORMAT.md, "Bounds"). Each case runs in a child process so an
abort (SIGABRT on a huge allocation) fails the test instead of killing the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import tiny_png

PYTHON_DIR = str(Path(__file__).resolve().parents[1] / "python")
TESTS_DIR = str(Path(__file__).resolve().parent)
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_region": "us-east-1"}

# The child opens the store, builds a loader and takes a batch; it prints the outcome as JSON and
# the peak-RSS growth (KiB) from just before opening to the end.
CHILD = textwrap.dedent("""
    import json, resource, sys
    from mobileclip_fastload import FastReinforcedLoader, Store
    location, options = sys.argv[1], json.loads(sys.argv[2])
    kw = {"cache_dir": options.pop("cache_dir"), "storage_options": options} if options else {}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        store = Store(location, **kw)
        loader = FastReinforcedLoader(location, batch_size=2, image_size=16, num_threads=1, **kw)
        next(iter(loader))
        outcome = {"ok": len(store)}
    except Exception as e:
        outcome = {"error": type(e).__name__, "message": str(e)}
    outcome["grew_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps(outcome))
""")


def run_child(location: str, options: dict | None = None, env: dict | None = None) -> dict:
    child_env = {**os.environ, "PYTHONPATH": PYTHON_DIR, **(env or {})}
    done = subprocess.run(
        check=False,
        args=[sys.executable, "-c", CHILD, location, json.dumps(options or {})],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env,
    )
    assert done.returncode == 0, f"child died (rc {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def two_shard_store(make_store) -> Path:
    # Schema 1: these cases edit the shard entries of manifest.json (schema 2's are in shards.idx).
    path = make_store(12, J=2, S=2, K=2, D=4, shard_samples=6, image_fn=tiny_png, schema_version=1)
    assert len(json.loads((path / "manifest.json").read_text())["shards"]) >= 2
    return path


def rewrite(store: Path, change) -> None:
    manifest = json.loads((store / "manifest.json").read_text())
    change(manifest)
    (store / "manifest.json").write_text(json.dumps(manifest))


def claim(count: int):
    def change(m: dict) -> None:
        m["num_samples"] += count - m["shards"][0]["num_samples"]
        m["shards"][0]["num_samples"] = count

    return change


def wrapping_sum(m: dict) -> None:
    # Per-shard counts whose sum wraps past 2^64 to the stated num_samples (the old check compared
    # them modulo 2^64 and passed): 2^64 - 1 + the others = the others - 1.
    m["num_samples"] -= m["shards"][0]["num_samples"] + 1
    m["shards"][0]["num_samples"] = 2**64 - 1
    m["shards"][0]["file_bytes"] = 2**64 - 1


CASES = {"2^36 samples": claim(2**36), "2^62 samples": claim(2**62), "wrapping sums": wrapping_sum}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_counts_are_a_format_error_not_an_abort(two_shard_store, case):
    rewrite(two_shard_store, CASES[case])
    outcome = run_child(str(two_shard_store))
    assert outcome["error"] == "StoreFormatError", outcome
    assert "manifest.json" in outcome["message"]
    assert "shard 0" in outcome["message"] and "samples, but" in outcome["message"], outcome


def test_a_manifest_past_the_limit_is_refused_at_bounded_memory(two_shard_store):
    # 48 MB of padding in the free-form metadata: valid JSON, far past a 1 MB limit.
    rewrite(two_shard_store, lambda m: m["metadata"].update(padding="x" * (48 << 20)))
    outcome = run_child(str(two_shard_store), env={"MOBILECLIP_FASTLOAD_MAX_MANIFEST_BYTES": str(1 << 20)})
    assert outcome["error"] == "StoreFormatError", outcome
    assert "larger than 1048576 bytes" in outcome["message"]
    assert "MOBILECLIP_FASTLOAD_MAX_MANIFEST_BYTES" in outcome["message"]
    assert outcome["grew_kib"] < 24 << 10, outcome  # reading it whole would add >= 48 MB


def test_a_manifest_within_the_limit_is_read(two_shard_store):
    rewrite(two_shard_store, lambda m: m["metadata"].update(padding="x" * (2 << 20)))
    outcome = run_child(str(two_shard_store), env={"MOBILECLIP_FASTLOAD_MAX_MANIFEST_BYTES": str(3 << 20)})
    assert outcome.get("ok") == 12, outcome


def test_a_bad_limit_setting_is_named(two_shard_store):
    outcome = run_child(str(two_shard_store), env={"MOBILECLIP_FASTLOAD_MAX_MANIFEST_BYTES": "lots"})
    assert outcome["error"] == "ValueError" and "MOBILECLIP_FASTLOAD_MAX_MANIFEST_BYTES" in outcome["message"], outcome


# --- the same from object storage (moto's S3 server on 127.0.0.1) -------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint():
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def upload(endpoint: str, store: Path, prefix: str) -> str:
    boto3 = pytest.importorskip("boto3")
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    if not client.list_buckets()["Buckets"]:
        client.create_bucket(Bucket="stores")
    for f in sorted(store.iterdir()):
        client.upload_file(str(f), "stores", f"{prefix}/{f.name}")
    return f"s3://stores/{prefix}"


def remote_options(endpoint: str, cache: Path) -> dict:
    return {"aws_endpoint": endpoint, "allow_http": "true", **CREDENTIALS, "cache_dir": str(cache)}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_crafted_counts_from_object_storage(two_shard_store, s3_endpoint, tmp_path, case):
    rewrite(two_shard_store, CASES[case])
    url = upload(s3_endpoint, two_shard_store, f"crafted-{case.replace(' ', '-').replace('^', '')}")
    outcome = run_child(url, remote_options(s3_endpoint, tmp_path / "cache"))
    assert outcome["error"] == "StoreFormatError", outcome
    assert url in outcome["message"]


@pytest.mark.slow
def test_a_large_remote_manifest_is_refused_without_reading_it(two_shard_store, s3_endpoint, tmp_path):
    rewrite(two_shard_store, lambda m: m["metadata"].update(padding="x" * (80 << 20)))  # > the 64 MiB default
    url = upload(s3_endpoint, two_shard_store, "large-manifest")
    outcome = run_child(url, remote_options(s3_endpoint, tmp_path / "cache"))
    assert outcome["error"] == "StoreFormatError", outcome
    assert f"larger than {64 << 20} bytes" in outcome["message"]
    assert outcome["grew_kib"] < 24 << 10, outcome
