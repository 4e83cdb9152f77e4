"""Remote stores against a real S3-compatible server (moto's standalone server on
127.0.0.1, filled with boto3): batches equal those of the same store on local
disk; dropped connections, corrupt and missing objects, a cache too small."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import pytest
import torch
from conftest import collect_batches
from mobileclip_fastload import FastReinforcedLoader, RemoteStoreError, Store
from remote_s3 import options, shard_files, upload

LOADER = dict(
    batch_size=5, image_size=32, num_threads=2, seed=3, image_dtype="uint8", order="shard_block", shuffle_window=2
)


def batches(loader, epoch=None, limit=None):
    if epoch is not None:
        loader.set_epoch(epoch)
    return collect_batches(loader, limit)


def assert_same(a, b):
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            assert torch.equal(x[k], y[k]), k


def test_remote_batches_equal_local_ones_and_each_shard_is_downloaded_once(s3, s3_endpoint, local_store, tmp_path):
    url = upload(s3, local_store, "equal")
    local = FastReinforcedLoader(local_store, **LOADER)
    remote = FastReinforcedLoader(url, **LOADER, cache_dir=tmp_path, storage_options=options(s3_endpoint))
    for epoch in (0, 1):
        assert_same(batches(remote, epoch), batches(local, epoch))
    stats = remote._core.cache_stats()
    assert stats["downloads"] == len(shard_files(local_store)) and stats["failed_attempts"] == 0
    assert stats["bytes_downloaded"] == sum(f.stat().st_size for f in shard_files(local_store))
    # A second loader on the same cache re-checks the cached files and downloads nothing.
    again = FastReinforcedLoader(url, **LOADER, cache_dir=tmp_path, storage_options=options(s3_endpoint))
    assert_same(batches(again, 0), batches(local, 0))
    assert again._core.cache_stats()["downloads"] == 0


def test_mid_epoch_resume_and_rank_blocks_from_a_remote_store(s3, s3_endpoint, local_store, tmp_path):
    url = upload(s3, local_store, "resume")
    remote_kw = dict(cache_dir=tmp_path, storage_options=options(s3_endpoint))
    full = batches(FastReinforcedLoader(url, **LOADER, **remote_kw))
    first = FastReinforcedLoader(url, **LOADER, **remote_kw)
    it = iter(first)
    next(it), next(it)
    state = first.state_dict()
    assert state["order"] == "shard_block:2"
    resumed = FastReinforcedLoader(url, **LOADER, **remote_kw)
    resumed.load_state_dict(state)
    assert_same(batches(resumed), full[2:])
    with pytest.raises(ValueError, match="order"):
        FastReinforcedLoader(local_store, **{**LOADER, "order": "global"}).load_state_dict(state)
    # Two ranks: equal length, and together they download little more than the store.
    per_rank = [
        FastReinforcedLoader(
            url, **LOADER, rank=r, world_size=2, cache_dir=tmp_path / f"r{r}", storage_options=options(s3_endpoint)
        )
        for r in (0, 1)
    ]
    local_ranks = [FastReinforcedLoader(local_store, **LOADER, rank=r, world_size=2) for r in (0, 1)]
    for remote, local in zip(per_rank, local_ranks):
        assert_same(batches(remote), batches(local))
    downloads = sum(r._core.cache_stats()["downloads"] for r in per_rank)
    assert downloads <= len(shard_files(local_store)) + 1


def test_store_opens_lazily_and_reads_back(s3, s3_endpoint, local_store, tmp_path):
    url = upload(s3, local_store, "lazy")
    store = Store(url, cache_dir=tmp_path, storage_options=options(s3_endpoint))
    local = Store(local_store)
    assert len(store) == len(local) and store.num_shards == local.num_shards
    assert store.shards_mapped == 0 and store.cache_stats()["downloads"] == 0
    for i in (0, len(local) - 1):
        a, b = store.sample(i), local.sample(i)
        assert a.uid == b.uid and a.image == b.image and (a.image_emb == b.image_emb).all()
    assert store.shard_path(0) == f"{url}/{os.path.basename(local.shard_path(0))}"
    assert store.verify() == []


def test_missing_object_is_a_clear_error(s3, s3_endpoint, local_store, tmp_path):
    url = upload(s3, local_store, "missing")
    s3.delete_object(Bucket="stores", Key="missing/shard-00001.arrow")
    store = Store(url, cache_dir=tmp_path, storage_options=options(s3_endpoint))
    first_of_shard1 = store.shard_entry(0)["num_samples"]
    assert store.uid(0)  # other shards still read
    with pytest.raises(RemoteStoreError, match=r"missing/shard-00001\.arrow: object not found") as info:
        store.uid(first_of_shard1)
    # An OSError like any other storage failure, naming the object.
    assert isinstance(info.value, OSError) and info.value.filename.endswith("missing/shard-00001.arrow")
    assert info.value.strerror == "object not found"
    assert store.cache_stats()["failed_attempts"] == 1  # not found is not retried
    # Through the loader: the error reaches the iterating thread, naming the object.
    loader = FastReinforcedLoader(
        url, **{**LOADER, "order": "global"}, cache_dir=tmp_path / "l", storage_options=options(s3_endpoint)
    )
    with pytest.raises(RemoteStoreError, match=r"missing/shard-00001\.arrow: object not found"):
        batches(loader)


def test_corrupt_object_is_fetched_again_then_refused(s3, s3_endpoint, local_store, tmp_path):
    url = upload(s3, local_store, "corrupt")
    data = bytearray(shard_files(local_store)[0].read_bytes())
    data[len(data) // 2] ^= 0x10  # same size, different bytes: only the checksum can tell
    s3.put_object(Bucket="stores", Key="corrupt/shard-00000.arrow", Body=bytes(data))
    store = Store(url, cache_dir=tmp_path, storage_options=options(s3_endpoint))
    with pytest.raises(RemoteStoreError, match=r"corrupt/shard-00000\.arrow: checksum mismatch.*after 3 attempts"):
        store.uid(0)
    assert store.cache_stats()["failed_attempts"] == 3
    assert not any(p.name.endswith(".arrow") or ".tmp-" in p.name for p in Path(store.local_dir).iterdir())
    # Repaired upstream: the next use fetches it again and reads.
    s3.upload_file(str(shard_files(local_store)[0]), "stores", "corrupt/shard-00000.arrow")
    assert store.uid(0) == Store(local_store).uid(0)


def test_cache_too_small_for_a_shard_is_a_clear_error(s3, s3_endpoint, local_store, tmp_path):
    url = upload(s3, local_store, "small")
    store = Store(url, cache_dir=tmp_path, cache_size=1000, storage_options=options(s3_endpoint))
    with pytest.raises(
        RemoteStoreError, match=r"small/shard-00000\.arrow: the cache cannot hold this shard.*cache_size is 1000"
    ):
        store.uid(0)


def test_a_bounded_cache_evicts_and_batches_stay_equal(s3, s3_endpoint, local_store, tmp_path):
    url = upload(s3, local_store, "evict")
    largest = max(f.stat().st_size for f in shard_files(local_store))
    kw = {**LOADER, "shuffle_window": 1}
    remote = FastReinforcedLoader(
        url, **kw, cache_dir=tmp_path, cache_size=3 * largest, storage_options=options(s3_endpoint)
    )
    assert_same(batches(remote), batches(FastReinforcedLoader(local_store, **kw)))
    stats = remote._core.cache_stats()
    assert stats["evictions"] > 0
    assert stats["downloads"] <= len(shard_files(local_store)) + 1, "shards fetched ahead were evicted before use"
    cached = sum(p.stat().st_size for p in Path(tmp_path).rglob("*.arrow"))
    assert cached <= 3 * largest


class DroppingProxy:
    """A TCP proxy to the S3 server that cuts `drops` responses off mid-body
    (after `after` bytes of a connection's response stream)."""

    def __init__(self, upstream: str, drops: int, after: int):
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.drops, self.after, self.dropped = drops, after, 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        upstream = socket.create_connection(self.upstream)

        def pump_requests():
            try:
                while data := client.recv(65536):
                    upstream.sendall(data)
            except OSError:
                pass

        threading.Thread(target=pump_requests, daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                with self.lock:
                    cut = self.drops > 0 and sent + len(data) > self.after
                    if cut:
                        self.drops -= 1
                        self.dropped += 1
                if cut:
                    client.sendall(data[: max(0, self.after - sent)])
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self):
        self.listener.close()


def test_dropped_connection_mid_download_is_retried(s3, s3_endpoint, local_store, tmp_path):
    url = upload(s3, local_store, "dropped")
    proxy = DroppingProxy(s3_endpoint, drops=2, after=20_000)
    try:
        store = Store(url, cache_dir=tmp_path, storage_options=options(proxy.url))
        local = Store(local_store)
        for i in range(len(local)):
            assert store.sample(i).image == local.sample(i).image
        assert proxy.dropped == 2
        assert store.cache_stats()["downloads"] == local.num_shards
    finally:
        proxy.close()


def test_credentials_from_the_environment_and_verify_from_the_cli(
    s3, s3_endpoint, local_store, tmp_path, monkeypatch, capsys
):
    from mobileclip_fastload import cli

    url = upload(s3, local_store, "env")
    for key, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "XDG_CACHE_HOME": str(tmp_path),
    }.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["verify", url]) == 0
    assert "every checksum matches" in capsys.readouterr().out
    s3.delete_object(Bucket="stores", Key="env/shard-00002.arrow")
    for cached in tmp_path.rglob("shard-00002.arrow"):
        cached.unlink()
    assert cli.main(["verify", url]) == 1
    assert "env/shard-00002.arrow: object not found" in capsys.readouterr().err
