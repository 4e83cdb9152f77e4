"""Pool workers end when the process that started the conversion is gone.

Forkserver workers are children of the forkserver, not of the converting
process, and they (with the forkserver and multiprocessing's resource tracker,
which live as long as a worker holds their pipes) would otherwise keep
converting queued shards after that process was killed. A daemon thread in
each worker waits for the parent's exit and ends the worker at once; the
temporary files it leaves are removed by the next run (``remove_stale_temporaries``).
"""

from __future__ import annotations

import os
import select
import threading
import time


def _wait_for_exit(pid: int) -> None:
    """Block until process `pid` has exited (a zombie counts as exited)."""
    if hasattr(os, "pidfd_open"):  # Linux >= 5.3: readable once the process exits
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        except OSError:
            pass  # e.g. seccomp-restricted; fall back below
        else:
            try:
                select.select([fd], [], [])
            finally:
                os.close(fd)
            return
    if hasattr(select, "kqueue"):  # macOS / BSD
        kq = select.kqueue()
        try:
            event = select.kevent(pid, filter=select.KQ_FILTER_PROC, fflags=select.KQ_NOTE_EXIT)
            kq.control([event], 1, None)
        except ProcessLookupError:
            pass
        finally:
            kq.close()
        return
    while True:  # other POSIX systems: poll (a zombie parent is missed until it is reaped)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)


def exit_when_gone(pid: int) -> None:
    """In a worker: end this process as soon as process `pid` has exited (POSIX only:
    on Windows, os.kill would terminate `pid` instead of probing it)."""
    if os.name != "posix":
        return

    def watch() -> None:
        _wait_for_exit(pid)
        os._exit(1)  # no cleanup: the parent that would collect our work is gone

    threading.Thread(target=watch, name=f"exit-when-{pid}-exits", daemon=True).start()
