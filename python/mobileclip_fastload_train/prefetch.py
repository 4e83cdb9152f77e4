"""Stage the next step's batches on the device while the current step runs.

``DevicePrefetcher`` pulls host items from a producer one step ahead and runs
the caller's ``stage`` function (host -> device copies with
``non_blocking=True``, uint8 normalisation, layout changes) on a side CUDA
stream, so the copy overlaps the compute already queued on the main stream.

Three rules keep that correct without a host synchronisation:

* the main stream waits (GPU-side) on the side stream's event before it uses a
  staged item;
* every device tensor of a staged item is ``record_stream``-ed on the main
  stream, so the caching allocator does not hand its memory to a later copy
  while the step still reads it;
* the host item (which may view recycled loader memory, see
  ``FastReinforcedLoader(pin_memory=True)``) is kept alive until its copy has
  finished on the GPU (``Event.query()``), since the loader refills that memory
  as soon as the last reference is dropped.

On a CPU device there is no stream: ``stage`` runs in line and items pass through.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch


def device_tensors(item: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside ``item`` (dataclasses, mappings, lists and tuples, nested)."""
    if isinstance(item, torch.Tensor):
        yield item
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        for f in dataclasses.fields(item):
            yield from device_tensors(getattr(item, f.name))
    elif isinstance(item, dict):
        for v in item.values():
            yield from device_tensors(v)
    elif isinstance(item, (list, tuple)):
        for v in item:
            yield from device_tensors(v)


class DevicePrefetcher:
    """``next()`` returns the staged item for this step and starts staging the next one.

    Args:
        produce: returns the next host item (blocking on the data source).
        stage: turns a host item into a device item; called under the side stream.
        device: where the model runs.
        keep_alive: host items whose copies may still be in flight beyond which
            the oldest is waited for (bounds host memory held back from the loader).
    """

    def __init__(
        self, produce: Callable[[], Any], stage: Callable[[Any], Any], device: torch.device, keep_alive: int = 2
    ) -> None:
        self.produce, self.stage, self.device = produce, stage, device
        self.cuda = device.type == "cuda"
        self.side = torch.cuda.Stream(device) if self.cuda else None
        self.keep_alive = keep_alive
        self._in_flight: collections.deque[tuple[torch.cuda.Event, Any]] = collections.deque()
        self._next: tuple[Any, torch.cuda.Event | None] | None = None

    def _start(self) -> None:
        host = self.produce()
        if not self.cuda:
            self._next = (self.stage(host), None)
            return
        # No wait on the main stream: staged tensors are allocated on the side stream, and the
        # allocator reuses those blocks only after the main-stream uses recorded below have finished.
        with torch.cuda.stream(self.side):
            staged = self.stage(host)
            done = torch.cuda.Event()
            done.record(self.side)
        self._in_flight.append((done, host))
        self._next = (staged, done)

    def _release_finished(self) -> None:
        while self._in_flight and self._in_flight[0][0].query():
            self._in_flight.popleft()
        while len(self._in_flight) > self.keep_alive:
            event, _ = self._in_flight.popleft()
            event.synchronize()  # only when the copies fall this far behind

    def next(self, more: bool = True) -> Any:
        """The staged item (safe to use on the current stream). With ``more`` the following
        item is produced and staged now, overlapping the step the caller is about to queue."""
        if self._next is None:
            self._start()
        staged, done = self._next
        self._next = None
        if self.cuda:
            main = torch.cuda.current_stream(self.device)
            main.wait_event(done)
            for t in device_tensors(staged):
                if t.device.type == "cuda":
                    t.record_stream(main)
        if more:
            self._start()
        if self.cuda:
            self._release_finished()
        return staged

    def close(self) -> None:
        """Wait for outstanding copies, then drop the host items they read."""
        for event, _ in self._in_flight:
            event.synchronize()
        self._in_flight.clear()
        self._next = None
