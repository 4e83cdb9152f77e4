"""One cache folder shared by several real processes (the ranks of a node): for several
rounds, three processes read the same remote store through one bounded cache, so they
download, check, place and evict shards under each other. Every batch equals the same
loader's batch from the local copy; each process's cache stays within its cache_size; a
shard another process placed is checked and used, not downloaded again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto.server")

from mobileclip_fastload import FastReinforcedLoader
from remote_s3 import options, shard_files, upload

CHILD = textwrap.dedent("""
    import json, sys, torch
    from mobileclip_fastload import FastReinforcedLoader
    url, local, cache, cache_size, storage, seed, epochs = json.loads(sys.argv[1])
    kw = dict(batch_size=5, image_size=32, num_threads=2, seed=seed, image_dtype="uint8", order="shard_block",
              shuffle_window=1, prefetch=2)
    remote = FastReinforcedLoader(url, **kw, cache_dir=cache, cache_size=cache_size, storage_options=storage)
    reference = FastReinforcedLoader(local, **kw)
    batches = 0
    for epoch in range(epochs):
        remote.set_epoch(epoch)
        reference.set_epoch(epoch)
        got, want = list(remote), list(reference)
        assert len(got) == len(want) > 0
        for a, b in zip(got, want):
            for name in ("images", "text", "image_emb", "text_emb", "syn_text", "syn_text_emb", "index"):
                assert torch.equal(getattr(a, name), getattr(b, name)), (epoch, a.batch_number, name)
            batches += 1
        del got
    print(json.dumps({"batches": batches, **remote._core.cache_stats()}))
""")


@pytest.mark.slow
def test_three_processes_share_one_cache_folder_for_several_rounds(s3, s3_endpoint, local_store, tmp_path):
    url = upload(s3, local_store, "shared")
    shards = shard_files(local_store)
    largest = max(f.stat().st_size for f in shards)
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    downloads = []
    for round_ in range(4):
        # Room for a few shards per process: each evicts while the others place and read.
        cache_size = 3 * largest if round_ % 2 == 0 else 2 * largest
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    json.dumps([url, str(local_store), str(cache), cache_size, options(s3_endpoint), seed, 2]),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for seed in (round_, round_ + 10, round_ + 20)
        ]
        results = [p.communicate(timeout=240) for p in procs]
        for p, (_, err) in zip(procs, results):
            assert p.returncode == 0, f"round {round_}: {err[-3000:]}"
        stats = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
        assert all(s["batches"] > 0 and s["failed_attempts"] == 0 for s in stats)
        downloads.append(sum(s["downloads"] for s in stats))
        # Only shard files, lock files and nothing half-written are left.
        (store_dir,) = cache.iterdir()
        names = os.listdir(store_dir)
        assert all(n == ".locks" or n in {f.name for f in shards} for n in names), names
    # Shards placed by one process were used by the others rather than downloaded again.
    epochs_read = 3 * 2 * len(shards)
    assert sum(downloads) < 4 * epochs_read, downloads


def test_a_shard_another_process_placed_is_checked_not_downloaded(s3, s3_endpoint, local_store, tmp_path):
    url = upload(s3, local_store, "placed")
    kw = dict(batch_size=5, image_size=32, num_threads=1, seed=1, image_dtype="uint8", order="shard_block")
    first = FastReinforcedLoader(url, **kw, cache_dir=tmp_path, storage_options=options(s3_endpoint))
    list(first)
    # A second loader in this process opens the folder while the first still holds its shards.
    second = FastReinforcedLoader(url, **kw, cache_dir=tmp_path, storage_options=options(s3_endpoint))
    list(second)
    assert second._core.cache_stats()["downloads"] == 0
    assert first._core.cache_stats()["downloads"] == len(shard_files(local_store))


def test_an_empty_cache_dir_is_refused(s3, s3_endpoint, local_store, tmp_path, monkeypatch):
    url = upload(s3, local_store, "emptydir")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="cache_dir is empty"):
        FastReinforcedLoader(url, batch_size=5, image_size=32, cache_dir="", storage_options=options(s3_endpoint))
    assert os.listdir(tmp_path) == []  # nothing written into the working directory
