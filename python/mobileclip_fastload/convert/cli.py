"""``python -m mobileclip_fastload convert INPUT... -o STORE [options]``."""

from __future__ import annotations

import argparse
import sys

HELP = "convert DataCompDR WebDataset shards into a DR store"


def _dims(text: str) -> tuple[int, int, int, int]:
    try:
        J, S, K, D = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("dims must be J,S,K,D (e.g. 30,5,2,768)") from None
    return J, S, K, D


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mobileclip_fastload.convert.options import LAYOUTS
    from mobileclip_fastload.ingest.cli_args import add_ingest_arguments

    add_ingest_arguments(
        p,
        inputs_help="DR shards: brace patterns (shards/{00000000..00001023}.tar), paths or folders",
        default_executor="process",
        executor_help="process (-j workers); ray (one task per shard); inline; torchrun (run under torchrun, one "
        "rank per process: each converts its share, rank 0 writes the manifest)",
    )
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="joined",
        help="joined: image+txt+DR members per sample; separate: DR shards + --image-shards",
    )
    p.add_argument("--image-shards", nargs="+", help="img2dataset image shards (separate layout), paired by file name")
    p.add_argument("--max-augmentations", type=int, default=None, help="keep only the first N augmentations")
    sets = p.add_mutually_exclusive_group()
    sets.add_argument(
        "--syn-key",
        action="append",
        default=None,
        help="a synthetic caption set to store (syn_text, syn_text_<tag> or <tag>); repeat for several, stored in "
        "this order (default: every syn_text* set, in name order)",
    )
    sets.add_argument(
        "--syn-key-regex",
        default=None,
        help="store the syn.json keys this regex picks (re.match, as Apple's --dataset-reinforcement-syn-text-key-"
        "regex), in name order",
    )
    p.add_argument("--num-teachers", type=int, default=2, help="K: teachers concatenated in the embeddings (default 2)")
    p.add_argument("--dims", type=_dims, default=None, help="J,S,K,D instead of inferring them from the first sample")


def run(args: argparse.Namespace) -> int:
    from mobileclip_fastload.convert import REPORT_NAME, convert
    from mobileclip_fastload.ingest.cli_args import run_tool

    def show(report) -> None:
        if not args.quiet:
            print(report.summary())
            print(f"report: {args.output}/{REPORT_NAME}")

    return run_tool(
        "convert",
        lambda: convert(
            args.inputs,
            args.output,
            layout=args.layout,
            image_shards=args.image_shards,
            workers=args.workers,
            embedding_dtype=args.embedding_dtype,
            max_augmentations=args.max_augmentations,
            target_shard_bytes=args.target_shard_size,
            executor=args.executor,
            progress=not args.no_progress,
            syn_key=args.syn_key,
            syn_key_regex=args.syn_key_regex,
            num_teachers=args.num_teachers,
            dims=args.dims,
            verify_resumed=args.verify_resumed,
            overwrite=args.overwrite,
        ),
        show,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mobileclip_fastload convert", description=HELP)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
