"""Page-locked loader memory and the copies that read it.

The loader's batch memory is recycled: a buffer goes back to the Rust pool as soon as the
last view of it dies, and is refilled with a later batch. A ``non_blocking`` copy from
page-locked memory runs on the GPU after the call returns, so the buffer must outlive the
copy, not only the Python call. PyTorch's own pinned allocator records a CUDA event for
that; for foreign memory ``record_stream`` does nothing. ``InFlightCopies`` does it here:
it holds a batch's memory until an event recorded after its copies has completed.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: cudaHostRegisterPortable: the memory counts as pinned for every CUDA context, not only the
#: current device's (a DDP rank that touches another device, or a device set after the loader).
_HOST_REGISTER_PORTABLE = 1


class PinnedBuffers:
    """Page-locks the recycled batch buffers, each once, exactly as torch sees them.

    The Rust pool hands out the same buffers again and again, and frees them only when the
    loader core is dropped, so a buffer registered at its first delivery stays valid until
    :meth:`unregister_all`. Every batch field starts on a page of its own and owns whole pages
    (the Rust ``PageBuf``), so each registration covers its field and nothing else."""

    def __init__(self) -> None:
        self._ranges: dict[int, tuple[int, int, int]] = {}  # address -> (bytes, first page, end page)

    def register(self, t: torch.Tensor) -> None:
        addr, size = t.data_ptr(), t.untyped_storage().nbytes()
        known = self._ranges.get(addr)
        if size == 0 or (known is not None and known[0] >= size):
            return
        if addr % PAGE:
            raise ValueError(f"batch field at {addr:#x} does not start on a page: it cannot be page-locked alone")
        if known is not None:  # first seen in a short last batch: widen the registration
            self._unregister(addr)
        first, end = addr // PAGE, -(-(addr + size) // PAGE)
        cudart = torch.cuda.cudart()
        torch.cuda.check_error(cudart.cudaHostRegister(addr, (end - first) * PAGE, _HOST_REGISTER_PORTABLE))
        self._ranges[addr] = (size, first, end)

    def _unregister(self, addr: int) -> None:
        self._ranges.pop(addr)
        torch.cuda.check_error(torch.cuda.cudart().cudaHostUnregister(addr))

    def unregister_all(self) -> None:
        """Wait for every queued copy (one may still read these pages), then unlock them all."""
        if self._ranges and torch.cuda.is_initialized():
            try:
                torch.cuda.synchronize()
            except Exception as e:  # interpreter shutdown: the CUDA context may be gone already
                log.debug("cuda.synchronize failed: %s", e)
        for addr in list(self._ranges):
            try:
                self._unregister(addr)
            except Exception as e:
                log.debug("cudaHostUnregister failed: %s", e)


class InFlightCopies:
    """Batch memory held until the copies queued before an event have run on the GPU.

    Args:
        new_event: returns an event recorded now on the stream the copies were queued on
            (default: a CUDA event on the current stream); it needs ``query()`` and ``synchronize()``.
        keep_alive: batches held at most; beyond that the oldest event is waited for (bounds
            the memory held back from the loader's pool when the GPU falls behind).
    """

    def __init__(self, new_event: Callable[[], Any] | None = None, keep_alive: int = 4) -> None:
        self._new_event = new_event or _event_on_current_stream
        self.keep_alive = keep_alive
        self._held: collections.deque[tuple[Any, Any]] = collections.deque()

    def hold(self, memory: Any) -> None:
        """Keep ``memory`` until everything queued so far on the stream has run."""
        self._held.append((self._new_event(), memory))
        self.release_finished()

    def release_finished(self) -> None:
        while self._held and self._held[0][0].query():
            self._held.popleft()
        while len(self._held) > self.keep_alive:
            event, _ = self._held.popleft()
            event.synchronize()

    def wait_all(self) -> None:
        while self._held:
            event, _ = self._held.popleft()
            event.synchronize()

    def __len__(self) -> int:
        return len(self._held)


def _event_on_current_stream() -> torch.cuda.Event:
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream())
    return event
