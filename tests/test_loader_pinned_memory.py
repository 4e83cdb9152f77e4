"""The loader's batch memory as page-locked copies need it, checked on the CPU: every field
starts on a page of its own (so each can be registered alone), a failed fill returns its
buffer to the pool (a freed registered buffer would be mistaken for a later allocation at the
same address), and batch memory is held until the copies queued before an event have run.
The CUDA side (registration, copies under a long kernel) is in tests/test_training_fast_step.py."""

from __future__ import annotations

import gc

import pytest
import torch
from mobileclip_fastload import FastReinforcedLoader, ImageDecodeError
from mobileclip_fastload.loader import ReinforcedBatch
from mobileclip_fastload.pinned import PAGE, InFlightCopies
from mobileclip_fastload.testing.synthetic_store import make_store

# Views of the Rust buffers (text_is_syn reaches Python as a bool copy of its uint8 field).
VIEWS = ("images", "text", "syn_text", "image_emb", "text_emb", "syn_text_emb", "index", "aug_index", "syn_index")
FIELDS = (*VIEWS, "text_is_syn")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("pinned") / "store", n=10, J=2, S=2, K=2, D=4, seed=1)


@pytest.mark.parametrize("image_dtype", ["uint8", "float32"])
def test_every_batch_field_starts_on_a_page_of_its_own(store_path, image_dtype):
    # Small fields (a few hundred bytes each) are what a heap allocator puts side by side.
    for b in FastReinforcedLoader(store_path, 3, image_size=8, num_threads=1, image_dtype=image_dtype):
        pages = {}
        for name in VIEWS:
            t = getattr(b, name)
            address = t.data_ptr()
            assert address % PAGE == 0, f"{name} at {address:#x} is not page-aligned"
            first, end = address // PAGE, -(-(address + t.untyped_storage().nbytes()) // PAGE)
            for other, (f, e) in pages.items():
                assert end <= f or e <= first, f"{name} shares a page with {other}"
            pages[name] = (first, end)


def drain(loader) -> None:
    """Iterate to the end holding no batch: each is dropped before the next is asked for."""
    for b in loader:
        del b


@pytest.mark.slow
def test_the_pool_keeps_its_buffers_after_fill_errors(tmp_path):
    """Every pass fails on the same undecodable image; a failed batch's buffer goes back to the
    pool, so the pool stays at its bound however many passes fail (it used to free that buffer
    and allocate a new one for every failing pass: 2, 3, 3, 4, 5, 6, ...)."""
    path = make_store(tmp_path / "store", n=8, J=2, S=2, K=2, D=4, seed=2, corrupt=(5,))
    loader = FastReinforcedLoader(path, 2, image_size=8, num_threads=1, prefetch=1, shuffle=False, on_error="raise")
    counts = []
    for _ in range(10):
        loader.set_epoch(0)
        with pytest.raises(ImageDecodeError):
            drain(loader)
        gc.collect()
        counts.append(loader._core.buffers_allocated())
    # prefetch window (1) + the batch the consumer holds + the one the worker fills (timing decides
    # how many of these a pass needs)
    assert max(counts) <= 3, f"buffers allocated after each failing pass: {counts}"


class _Event:
    """Stands in for a CUDA event (there is no GPU here): done once the test says so."""

    def __init__(self) -> None:
        self.done = False

    def query(self) -> bool:
        return self.done

    def synchronize(self) -> None:
        self.done = True


def test_in_flight_copies_hold_memory_until_their_event_has_run(store_path):
    events: list[_Event] = []

    def new_event() -> _Event:
        events.append(_Event())
        return events[-1]

    copies = InFlightCopies(new_event, keep_alive=2)
    loader = FastReinforcedLoader(store_path, 2, image_size=8, num_threads=1, prefetch=1)
    it = iter(loader)
    first = next(it)
    copies.hold(first.memory)
    address = first.images.data_ptr()
    del first
    gc.collect()
    later = [next(it) for _ in range(3)]  # the held buffer is not handed out again
    assert address not in {b.images.data_ptr() for b in later} and len(copies) == 1
    events[0].done = True
    copies.release_finished()
    assert len(copies) == 0
    for b in later:  # more held than keep_alive: the oldest is waited for
        copies.hold(b.memory)
    assert len(copies) == 2 and events[1].done and not events[2].done
    copies.wait_all()
    assert len(copies) == 0 and all(e.done for e in events)


def test_batch_to_a_device_moves_every_tensor_and_lets_the_memory_go(store_path):
    b = next(iter(FastReinforcedLoader(store_path, 2, image_size=8, num_threads=1)))
    moved = b.to("cpu", non_blocking=True)
    assert isinstance(moved, ReinforcedBatch) and moved.memory is None and moved.copies is None
    for name in FIELDS:
        assert torch.equal(getattr(moved, name), getattr(b, name)), name
    assert (moved.epoch, moved.batch_number) == (b.epoch, b.batch_number)
