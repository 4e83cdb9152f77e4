"""Command-line helpers both ingest CLIs use: the size argument and the error handling around a run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

#: what an ingest API raises for bad arguments or inputs, or an output folder it refuses to replace
#: (``StoreExistsError`` is a ``FileExistsError``): the CLI prints it and exits with 2
USER_ERRORS = (ValueError, ImportError, FileNotFoundError, FileExistsError)


def parse_size(text: str) -> int:
    """'512M', '1G', '1.5GiB', '1000000' -> bytes (an argparse ``type``)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in "KMGT" else t
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 1G)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return value


def run_tool(tool: str, call: Callable[[], Any], show: Callable[[Any], None]) -> int:
    """Run an ingest tool from its CLI: ``call()`` returns the report, ``show(report)`` prints it.
    Exit code 2 after printing ``<tool>: error: ...`` when the call raised a user error, or when some input
    shard could not be read at all (the store holds the others); else 0 (skipped samples are data
    problems, counted in the report)."""
    try:
        report = call()
    except USER_ERRORS as e:
        print(f"{tool}: error: {e}", file=sys.stderr)
        return 2
    show(report)
    return 2 if report.unreadable_shards else 0
