"""Iterator semantics of FastReinforcedLoader: independent iterators, dead
iterators, errors in order, skipped samples listed once, and a property test
over interleavings of iterators, set_epoch, break, del and state_dict against
one uninterrupted reference sequence."""

from __future__ import annotations

import gc
import threading

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mobileclip_fastload import FastReinforcedLoader, ImageDecodeError
from mobileclip_fastload.testing.synthetic_store import make_store

N = 13
BATCH = 3
BATCHES = 5  # ceil(13 / 3)
KWARGS = dict(image_size=8, image_dtype="uint8", num_threads=2, prefetch=2, seed=7)
FIELDS = ("images", "text", "index", "aug_index", "syn_index", "text_is_syn")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("iteration") / "store", n=N, seed=3)


@pytest.fixture(scope="module")
def reference(store_path):
    """reference(epoch): the batches of `epoch`, read in one uninterrupted pass by a fresh loader."""
    cache: dict[int, list[dict]] = {}

    def get(epoch: int) -> list[dict]:
        if epoch not in cache:
            loader = FastReinforcedLoader(store_path, BATCH, **KWARGS)
            loader.set_epoch(epoch)
            cache[epoch] = [snapshot(b) for b in loader]
            assert len(cache[epoch]) == BATCHES
        return cache[epoch]

    return get


def snapshot(batch) -> dict:
    out = {k: getattr(batch, k).clone() for k in FIELDS}
    out["where"] = (batch.epoch, batch.batch_number)
    return out


def assert_same(got: dict, want: dict) -> None:
    assert got["where"] == want["where"]
    for k in FIELDS:
        assert torch.equal(got[k], want[k]), (k, got["where"])


def test_two_iterators_are_independent(store_path, reference):
    loader = FastReinforcedLoader(store_path, BATCH, **KWARGS)
    it1, it2 = iter(loader), iter(loader)
    got1, got2 = [], []
    for _ in range(BATCHES):
        got1.append(snapshot(next(it1)))
        got2.append(snapshot(next(it2)))
    for it in (it1, it2):
        with pytest.raises(StopIteration):
            next(it)
    for got in (got1, got2):
        for g, w in zip(got, reference(0), strict=True):
            assert_same(g, w)


def test_two_threads_each_iterating_get_whole_epochs(store_path, reference):
    loader = FastReinforcedLoader(store_path, BATCH, **KWARGS)
    results: list[list[dict]] = [[], []]
    errors: list[BaseException] = []
    # Both iterators exist before either delivers a batch, so both start at (0, 0);
    # an iterator made later would start where the loader's position then is.
    both_started = threading.Barrier(2)

    def consume(out: list) -> None:
        try:
            it = iter(loader)
            both_started.wait(30)
            out.extend(snapshot(b) for b in it)
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=consume, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for got in results:
        assert [g["where"] for g in got] == [(0, b) for b in range(BATCHES)]
        for g, w in zip(got, reference(0)):
            assert_same(g, w)


def test_a_dead_old_iterator_does_not_cut_the_next_epoch_short(store_path, reference):
    loader = FastReinforcedLoader(store_path, BATCH, **KWARGS)
    warm = iter(loader)
    next(warm)
    loader.set_epoch(1)
    got = []
    for i, b in enumerate(loader):
        got.append(snapshot(b))
        if i == 1:
            del warm
            gc.collect()
    assert len(got) == BATCHES
    for g, w in zip(got, reference(1)):
        assert_same(g, w)
    assert loader.state_dict()["epoch"] == 2 and loader.state_dict()["batches_done"] == 0


def test_breaking_out_resumes_where_it_stopped(store_path, reference):
    loader = FastReinforcedLoader(store_path, BATCH, **KWARGS)
    got = []
    for b in loader:
        got.append(snapshot(b))
        if len(got) == 2:
            break
    got += [snapshot(b) for b in loader]
    assert [g["where"] for g in got] == [(0, b) for b in range(BATCHES)]


@pytest.fixture(scope="module")
def store_with_bad_sample(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("bad6") / "store", n=12, seed=5, corrupt=(6,))


@pytest.mark.parametrize(("batch_size", "good"), [(1, 6), (3, 2)])
def test_on_error_raise_delivers_every_good_batch_first(store_with_bad_sample, batch_size, good):
    for run in range(8):
        loader = FastReinforcedLoader(
            store_with_bad_sample,
            batch_size,
            image_size=8,
            shuffle=False,
            num_threads=2 + run % 3,
            prefetch=8,
            on_error="raise",
        )
        delivered = []
        with pytest.raises(ImageDecodeError, match="sample-00006"):  # noqa: PT012 -- the batches before the error count
            for b in loader:
                delivered.append(b.index.tolist())  # noqa: PERF401 -- the batches before the error
        assert delivered == [list(range(i * batch_size, (i + 1) * batch_size)) for i in range(good)], run
        assert loader.state_dict()["batches_done"] == good


def test_skipped_lists_each_bad_sample_once(tmp_path):
    path = make_store(tmp_path / "store", n=10, seed=2, corrupt=(3, 4))
    loader = FastReinforcedLoader(path, 4, image_size=8, num_threads=2, seed=0, shuffle=False)
    for _ in range(3):  # three epochs: still one record per bad sample
        for _ in loader:
            pass
    skipped = loader.skipped
    assert sorted(s["index"] for s in skipped) == [3, 4]
    # the replacement is what was delivered: the next sample in index order that decodes
    assert {s["index"]: s["replacement"] for s in skipped} == {3: 5, 4: 5}
    assert {s["uid"] for s in skipped} == {"sample-00003", "sample-00004"}


# ----------------------------------------------------------------------------- interleavings
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("iter")),
        st.tuples(st.just("next"), st.integers(0, 3), st.integers(1, 3)),
        st.tuples(st.just("del"), st.integers(0, 3)),
        st.tuples(st.just("for_break"), st.integers(1, BATCHES + 1)),
        st.tuples(st.just("set_epoch"), st.integers(0, 2)),
        st.tuples(st.just("state_dict")),
        st.tuples(st.just("load_state_dict")),
    ),
    max_size=14,
)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_interleavings_deliver_the_reference_sequence(store_path, reference, ops):
    """Model: each iterator delivers consecutive batches of its own epoch from
    the loader's position at its creation; the loader's position follows the
    newest iterator (and set_epoch / load_state_dict), and moves to the next
    epoch as soon as the last batch of an epoch is delivered."""
    loader = FastReinforcedLoader(store_path, BATCH, **KWARGS)
    position = [0, 0]  # the model's (epoch, batches_done)
    owner = None  # the iterator that moves the position
    live: list[tuple[object, list[int]]] = []  # (iterator, [epoch, next batch]) in creation order
    saved = None

    def step(it, cursor) -> None:
        e, b = cursor
        if b == BATCHES:
            with pytest.raises(StopIteration):
                next(it)
            return
        assert_same(snapshot(next(it)), reference(e)[b])
        cursor[1] += 1
        if owner is it:
            position[:] = [e, b + 1] if b + 1 < BATCHES else [e + 1, 0]

    for op in ops:
        kind = op[0]
        if kind == "iter":
            it = iter(loader)
            owner = it
            live.append((it, list(position)))
        elif kind == "next" and live:
            it, cursor = live[op[1] % len(live)]
            for _ in range(op[2]):
                step(it, cursor)
        elif kind == "del" and live:
            it, _ = live.pop(op[1] % len(live))
            if owner is it:
                owner = None  # the position stays where that iterator left it
            del it
            gc.collect()
        elif kind == "for_break":
            e, b = position
            got = []
            for batch in loader:
                got.append(snapshot(batch))
                if len(got) == op[1]:
                    break
            for i, g in enumerate(got):
                assert_same(g, reference(e)[b + i])
            assert len(got) == min(op[1], BATCHES - b)
            position[:] = [e + 1, 0] if b + len(got) == BATCHES else [e, b + len(got)]
            owner = None  # the loop's own iterator took over the position, and is gone
        elif kind == "set_epoch":
            loader.set_epoch(op[1])
            position[:] = [op[1], 0]
            owner = None
        elif kind == "state_dict":
            saved = loader.state_dict()
            assert (saved["epoch"], saved["batches_done"]) == tuple(position)
        elif kind == "load_state_dict" and saved is not None:
            loader.load_state_dict(saved)
            position[:] = [saved["epoch"], saved["batches_done"]]
            owner = None
        state = loader.state_dict()
        assert (state["epoch"], state["batches_done"]) == tuple(position), op

    # A fresh loader resumed from the final state continues the reference sequence.
    resumed = FastReinforcedLoader(store_path, BATCH, **KWARGS)
    resumed.load_state_dict(loader.state_dict())
    e, b = position
    for i, batch in enumerate(resumed):
        assert_same(snapshot(batch), reference(e)[b + i])
