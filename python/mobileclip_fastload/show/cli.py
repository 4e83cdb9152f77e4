"""Arguments and entry point of `mobileclip-fastload show`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mobileclip_fastload.show.summary import SUMMARY_SHARDS
from mobileclip_fastload.show.view import DEFAULT_AUGMENTATIONS, DEFAULT_SAMPLES, DEFAULT_SUMMARY_SIZE

if TYPE_CHECKING:
    from mobileclip_fastload import Store


def _indices(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sample indices, got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The view's own options (the store and its remote options are the CLI's, as for every command)."""
    p.add_argument("-o", "--output", required=True, help="the HTML file to write")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "-n",
        type=int,
        default=DEFAULT_SAMPLES,
        help=f"show this many samples drawn at random (default {DEFAULT_SAMPLES})",
    )
    which.add_argument("--samples", type=_indices, default=None, help="show these sample indices, e.g. 3,17,-1")
    p.add_argument(
        "--augmentations",
        type=int,
        default=DEFAULT_AUGMENTATIONS,
        help=f"augmentations replayed per sample, the first ones of J (default {DEFAULT_AUGMENTATIONS})",
    )
    p.add_argument("--image-size", type=int, default=None, help="replay size (default: the loader's)")
    p.add_argument("--interpolation", default=None, help="replay resampling (default: the loader's)")
    p.add_argument(
        "--summary-samples",
        type=int,
        default=DEFAULT_SUMMARY_SIZE,
        help=f"samples the header's plots and the outlier flags summarise (default {DEFAULT_SUMMARY_SIZE}; "
        f"drawn from at most {SUMMARY_SHARDS} shards, or a remote store's shown shards)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random choices (default 0)")


def run(args: argparse.Namespace, store: Store) -> int:
    from mobileclip_fastload.show.view import write_view

    try:
        report = write_view(
            store,
            args.output,
            samples=args.samples,
            n=args.n,
            augmentations=args.augmentations,
            image_size=args.image_size,
            interpolation=args.interpolation,
            summary_size=args.summary_samples,
            seed=args.seed,
        )
    except (ValueError, IndexError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {report.output}: {len(report.samples)} samples, summary of {report.summary_size}, "
        f"{report.seconds:.2f} s"
    )
    return 0
