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


def add_ingest_arguments(
    p: argparse.ArgumentParser, *, inputs_help: str, default_executor: str, executor_help: str
) -> None:
    """The options `convert` and `reinforce` share, defined once: inputs, output folder, executor and
    workers, store encoding and shard size, how a resumed run checks its finished shards, output."""
    from mobileclip_fastload.ingest.executors import EXECUTORS
    from mobileclip_fastload.ingest.options import DEFAULT_TARGET_SHARD_BYTES, EMBEDDING_DTYPES, VERIFY_RESUMED

    p.add_argument("inputs", nargs="+", help=inputs_help)
    p.add_argument("-o", "--output", required=True, help="store directory to write (created; resumable)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished store or another tool's run in --output (refused otherwise)",
    )
    p.add_argument("--executor", choices=EXECUTORS, default=default_executor, help=executor_help)
    p.add_argument(
        "-j", "--workers", type=int, default=None, help="worker processes (process executor; default: all cores)"
    )
    p.add_argument("--embedding-dtype", choices=EMBEDDING_DTYPES, default="float16")
    p.add_argument(
        "--target-shard-size",
        type=parse_size,
        default=DEFAULT_TARGET_SHARD_BYTES,
        help="split an input shard into store shards of about this size (default 512M)",
    )
    p.add_argument(
        "--verify-resumed",
        choices=VERIFY_RESUMED,
        default="checksum",
        help="how finished shards of an earlier run are checked before being skipped",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it is off anyway when not a TTY)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the report summary")


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
