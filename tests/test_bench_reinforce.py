"""The reinforcement bench refuses to time a run whose shards failed (it printed 0 images/s before)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from mobileclip_fastload.reinforce import reinforce
from mobileclip_fastload.reinforce.captioners import Captioner
from mobileclip_fastload.testing.image_text_pairs import make_pair_shards
from mobileclip_fastload.testing.tiny_models import tiny_specs

BENCH = Path(__file__).resolve().parents[1] / "benches" / "bench_reinforce.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_reinforce", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BrokenCaptioner(Captioner):
    """Fails like CoCa without its transformers: every shard records FAILED."""

    tag, num_captions = "broken", 1

    def fingerprint(self) -> dict:
        return {"kind": "broken"}

    def caption(self, images, seeds, device):
        raise AssertionError("generation is disabled: transformers is missing")


def test_bench_stops_with_the_failed_shards_errors(tmp_path, one_torch_thread):
    bench = load_bench()
    _, (teacher, _) = tiny_specs(tmp_path / "configs")
    shards = make_pair_shards(tmp_path / "pairs", num_shards=2, samples_per_shard=2, seed=4)
    report = reinforce(
        shards,
        tmp_path / "store",
        teachers=[teacher],
        captioners=[BrokenCaptioner()],
        num_augmentations=2,
        device="cpu",
        num_threads=1,
        progress=False,
    )
    assert len(report.unreadable_shards) == 2  # recorded, not raised, by reinforce itself
    with pytest.raises(bench.ShardsFailed, match="2 of 2 shards did not finish") as e:
        bench.require_finished(report)
    message = str(e.value)
    assert all(f"failed {shard}" in message for shard in shards)
    assert message.count("AssertionError: generation is disabled") >= 2  # each shard's own error (traceback)
