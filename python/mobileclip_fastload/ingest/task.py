"""One task's life, for every ingest tool: resumed if it finished before, else run with its failures
recorded in its report (never raised), its done record written last; progress throttled on the way."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TypeVar

from mobileclip_fastload.ingest.report import CONVERTED, FAILED, UNREADABLE, ShardReport
from mobileclip_fastload.ingest.tar_samples import ShardUnreadable

ProgressFn = Callable[[int, int], None]  # (input bytes done since last call, samples done since last call)
R = TypeVar("R", bound=ShardReport)


class Throttle:
    """Calls ``fn`` with accumulated deltas at most every ``interval`` seconds."""

    def __init__(self, fn: ProgressFn | None, interval: float = 0.2):
        self.fn, self.interval = fn, interval
        self.bytes = self.samples = 0
        self.last = time.monotonic()

    def add(self, nbytes: int, nsamples: int, force: bool = False) -> None:
        if self.fn is None:
            return
        self.bytes += nbytes
        self.samples += nsamples
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            if self.bytes or self.samples:
                self.fn(self.bytes, self.samples)
            self.bytes = self.samples = 0
            self.last = now


def run_task(
    finished: Callable[[], R | None],
    new_report: Callable[[], R],
    inputs: Sequence[str | None],
    work: Callable[[R, Throttle], None],
    write_done: Callable[[R], None],
    progress: ProgressFn | None,
) -> R:
    """One task's life, for convert and reinforce alike: a task that finished before is
    reported as it was; otherwise its `inputs` must exist (checked before `work` removes
    any earlier output), `work` runs, an unreadable input or any failure is recorded in
    the report instead of raised, and a converted task's done record is written last
    (`write_done`)."""
    t0, c0 = time.perf_counter(), time.process_time()
    done = finished()
    if done is not None:
        if progress:
            progress(done.bytes_in, done.samples_in)
        return done
    report = new_report()
    throttle = Throttle(progress)
    try:
        for path in inputs:
            if path is not None and not os.path.isfile(path):  # before any earlier output is removed
                raise ShardUnreadable(f"cannot read {path}: no such file")
        work(report, throttle)
    except ShardUnreadable as e:
        report.status, report.error = UNREADABLE, str(e)
    except Exception as e:  # a bug (or a model failure) must not take the other shards down
        report.status = FAILED
        report.error = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"
    throttle.add(0, 0, force=True)
    report.seconds = time.perf_counter() - t0
    report.cpu_seconds = time.process_time() - c0
    if report.status == CONVERTED:
        write_done(report)
    return report
