"""The epoch order as a keyed permutation evaluated per position (`_core.epoch_indices`, the
loader's own `EpochPlan`): a bijection for every size, deterministic, resumable at any
position, split into disjoint rank shards that cover the store, random-looking to simple
statistics that structured orders (identity, rotations) fail, and cheap at any scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mobileclip_fastload import FastReinforcedLoader, Store, _core
from mobileclip_fastload.testing.synthetic_store import make_store

seeds = st.integers(0, 2**64 - 1)


def test_bijective_for_every_small_size():
    for n in range(260):
        for seed in (0, 1, 2**64 - 1):
            assert sorted(_core.epoch_indices(n, seed=seed, epoch=seed % 5)) == list(range(n)), n


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 5000), seed=seeds, epoch=st.integers(0, 2**64 - 1))
def test_bijective_for_any_size_and_key(n, seed, epoch):
    order = _core.epoch_indices(n, seed=seed, epoch=epoch)
    assert len(order) == n and sorted(order) == list(range(n))
    assert order == _core.epoch_indices(n, seed=seed, epoch=epoch)  # deterministic


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3000), seed=seeds, start=st.integers(0, 3000), data=st.data())
def test_resume_jumps_to_its_position(n, seed, start, data):
    shards = data.draw(st.lists(st.integers(0, 40), min_size=1, max_size=30).filter(lambda s: sum(s) > 0))
    for kw in ({"num_samples": n}, {"num_samples": sum(shards), "shard_sizes": shards, "window": 2}):
        full = _core.epoch_indices(**kw, seed=seed, epoch=3)
        assert _core.epoch_indices(**kw, seed=seed, epoch=3, start=start) == full[start:]
        assert _core.epoch_indices(**kw, seed=seed, epoch=3, start=start, count=7) == full[start : start + 7]


@settings(max_examples=40, deadline=None)
@given(
    shards=st.lists(st.integers(0, 30), min_size=1, max_size=25).filter(lambda s: sum(s) > 0),
    world=st.integers(1, 9),
    seed=seeds,
    blocks=st.booleans(),
)
def test_ranks_are_disjoint_and_cover_the_store(shards, world, seed, blocks):
    n = sum(shards)
    kw = {"num_samples": n, "seed": seed, "epoch": 1, "world_size": world}
    if blocks:
        kw.update(shard_sizes=shards, window=3)
    dropped = [i for r in range(world) for i in _core.epoch_indices(**kw, rank=r, drop_last=True)]
    assert len(dropped) == n // world * world and len(set(dropped)) == len(dropped)
    padded = [_core.epoch_indices(**kw, rank=r) for r in range(world)]
    assert all(len(p) == math.ceil(n / world) for p in padded)
    assert set().union(*map(set, padded)) == set(range(n))


def test_epochs_and_seeds_give_different_orders():
    a = _core.epoch_indices(1000, seed=1, epoch=0)
    assert a != _core.epoch_indices(1000, seed=1, epoch=1) and a != _core.epoch_indices(1000, seed=2, epoch=0)


# --- statistical quality: the tests a random permutation passes and a structured one fails ---


def position_correlation(perm: np.ndarray) -> float:
    """Spearman correlation of position and value (~N(0, 1/(n-1)) for a random permutation)."""
    return float(np.corrcoef(np.arange(len(perm)), perm)[0, 1])


def range_position_chi_square(perm: np.ndarray, groups: int = 16, bins: int = 16) -> tuple[float, int]:
    """Where do the samples of each 1/groups index range land among `bins` position ranges?"""
    n = len(perm)
    table = np.zeros((groups, bins))
    np.add.at(table, (perm * groups // n, np.arange(n) * bins // n), 1)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    return float(((table - expected) ** 2 / expected).sum()), (groups - 1) * (bins - 1)


def displacement_ks(perm: np.ndarray) -> float:
    """KS distance of |value - position| / n from the distribution of |U - V| (CDF 1 - (1 - x)^2)."""
    n = len(perm)
    d = np.sort(np.abs(perm - np.arange(n)) / n)
    cdf = 1 - (1 - d) ** 2
    k = np.arange(1, n + 1) / n
    return float(max(np.abs(k - cdf).max(), np.abs(cdf - (k - 1 / n)).max()))


def looks_random(perm) -> bool:
    perm = np.asarray(perm, dtype=np.int64)
    n = len(perm)
    chi, dof = range_position_chi_square(perm)
    return (
        abs(position_correlation(perm)) < 4.5 / math.sqrt(n - 1)
        and chi < dof + 5 * math.sqrt(2 * dof)
        and displacement_ks(perm) < 2 / math.sqrt(n)
    )


@pytest.mark.parametrize(("n", "seed"), [(20_000, 0), (65_537, 1), (100_003, 7), (2**17, 3)])
def test_the_order_passes_statistics_that_structured_orders_fail(n, seed):
    assert looks_random(_core.epoch_indices(n, seed=seed, epoch=2))
    # Each rank's share is random-looking too (its values spread over the whole store).
    share = np.asarray(_core.epoch_indices(n, seed=seed, epoch=2, rank=1, world_size=4))
    assert abs(position_correlation(share)) < 4.5 / math.sqrt(len(share) - 1)
    for bad in (
        np.arange(n),
        (np.arange(n) + n // 2) % n,
        (np.arange(n) + 11) % n,
        np.arange(n)[::-1],
        _core.epoch_indices(n, shuffle=False),
    ):
        assert not looks_random(bad)


def test_a_billion_sample_epoch_is_planned_per_position():
    n = 1_280_000_000
    first = _core.epoch_indices(n, seed=5, epoch=0, rank=3, world_size=8, count=256)
    assert len(first) == len(set(first)) == 256 and all(0 <= i < n for i in first)
    # A resumed epoch starts straight at its position, deep into the epoch.
    late = _core.epoch_indices(n, seed=5, epoch=0, rank=3, world_size=8, start=150_000_000, count=256)
    assert len(set(late)) == 256 and not set(late) & set(first)


def test_the_loader_reads_in_exactly_this_order(tmp_path):
    make_store(tmp_path / "s", n=37, J=1, S=1, K=1, D=4, seed=2, target_shard_bytes=6_000)
    store = Store(tmp_path / "s")
    sizes = [store.shard_entry(n)["num_samples"] for n in range(store.num_shards)]
    assert len(sizes) > 3
    for order, extra in (("global", {}), ("shard_block", {"shard_sizes": sizes, "window": 2})):
        loader = FastReinforcedLoader(
            tmp_path / "s",
            batch_size=4,
            image_size=8,
            seed=9,
            rank=1,
            world_size=2,
            order=order,
            shuffle_window=2,
            num_threads=2,
        )
        loader.set_epoch(3)
        read = [int(i) for batch in loader for i in batch.index]
        assert read == _core.epoch_indices(37, seed=9, epoch=3, rank=1, world_size=2, **extra), order
