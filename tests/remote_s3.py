"""A real S3-compatible server for the remote-store tests (moto's standalone server on 127.0.0.1, filled with
boto3): the fixtures `s3_endpoint`, `s3` and `local_store` (registered for every test module by conftest.py)
and the helpers that upload a store and name its options. Not a test module: test modules import these
helpers from here, never from each other."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mobileclip_fastload.testing.synthetic_store import make_store

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_region": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint():
    # Imported here, not at the top: conftest.py imports this module for every test, with or without moto.
    import moto.server as moto_server

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3(s3_endpoint):
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=CREDENTIALS["aws_region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket="stores")
    return client


@pytest.fixture(scope="module")
def local_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("remote") / "store"
    make_store(path, n=24, J=2, S=2, K=2, D=4, seed=5, target_shard_bytes=40_000)
    assert len(os.listdir(path)) >= 5, "the test needs several shards"
    return path


def upload(s3, store: Path, prefix: str) -> str:
    for f in sorted(store.iterdir()):
        s3.upload_file(str(f), "stores", f"{prefix}/{f.name}")
    return f"s3://stores/{prefix}"


def options(endpoint: str) -> dict[str, str]:
    return {"aws_endpoint": endpoint, "allow_http": "true", **CREDENTIALS}


def shard_files(store: Path) -> list[Path]:
    return sorted(store.glob("shard-*.arrow"))
