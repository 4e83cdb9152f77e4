"""The `mobileclip-fastload` command (also `python -m mobileclip_fastload`).

Subcommands live in the `SUBCOMMANDS` table: one `Subcommand(name, help,
add_arguments, run)` per entry, where `add_arguments(parser)` declares the
options and `run(args) -> int` does the work and returns the exit status. To add
one, write those two functions (keep heavy imports such as torch inside `run`,
so `--help` stays fast) and append an entry.

Exit status: 0 success, 1 the check failed (e.g. `verify` found damage),
2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    # True: no options of its own; every argument after the name (--help too) goes to the program it runs
    forwards_arguments: bool = False


# --- inspect -----------------------------------------------------------------


def _store_arguments(p: argparse.ArgumentParser) -> None:
    """The store to read, local or remote, with the options `Store` takes (one set for every command)."""
    p.add_argument(
        "store",
        help="store directory, or URL (s3://, gs://, az://, http(s)://, file://; "
        "credentials from the usual environment variables)",
    )
    p.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain http:// to the object store (a local S3 server, say); https only otherwise",
    )
    p.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_key_value,
        help="object_store option, repeatable (aws_endpoint=http://127.0.0.1:9000, aws_region=..., timeout=...)",
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        help="where a remote store's shards are cached (default ~/.cache/mobileclip-fastload)",
    )


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _is_url(location: str) -> bool:
    from mobileclip_fastload import _core

    return _core.is_url(location)


def _store_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of `Store` that the command line's remote options give; they are an error for a
    local path."""
    if not _is_url(args.store):
        given = [
            flag
            for flag, used in (
                ("--allow-http", args.allow_http),
                ("--storage-option", args.storage_option),
                ("--cache-dir", args.cache_dir),
            )
            if used
        ]
        if given:
            raise ValueError(f"{', '.join(given)}: only for a store URL, and {args.store} is a local path")
        return {}
    options = dict(args.storage_option)
    if args.allow_http:
        options["allow_http"] = "true"
    return {"cache_dir": args.cache_dir, "storage_options": options or None}


def _open_store(args: argparse.Namespace):
    """`Store(args.store, ...)` with the command line's remote options."""
    from mobileclip_fastload import Store

    return Store(args.store, **_store_options(args))


def _inspect_arguments(p: argparse.ArgumentParser) -> None:
    _store_arguments(p)
    p.add_argument(
        "--sample", type=int, default=0, help="index of the sample to show (default 0; negative counts from the end)"
    )


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def _short(text: str, limit: int = 100) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _embedding_summary(store, i: int) -> list[str]:
    import numpy as np

    from mobileclip_fastload.store import decode_embeddings

    K, D = store.dims["K"], store.dims["D"]

    def as_float(values: np.ndarray, scales: np.ndarray | None) -> np.ndarray:
        return decode_embeddings(values, store.embedding_dtype, scales)

    lines = []
    for name, values, scales in (
        ("image_emb", store.image_embs(i), store.image_emb_scales(i)),
        ("text_emb", store.text_emb(i), store.text_emb_scales(i)),
    ):
        x = as_float(values, scales).reshape(values.shape[0], K, D)
        norms = np.linalg.norm(x, axis=2)
        lines.append(
            f"  {name}: {values.dtype}{list(values.shape)}, per-teacher L2 norms "
            f"min {norms.min():.4f} max {norms.max():.4f}; row 0 starts {np.array2string(x[0, 0, :4], precision=4)}"
        )
    return lines


def _image_kind(data: bytes) -> str:
    signatures = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"RIFF": "WebP?", b"GIF8": "GIF"}
    return next((kind for sig, kind in signatures.items() if data.startswith(sig)), "unknown format")


def _inspect(args: argparse.Namespace) -> int:
    store = _open_store(args)
    m = store.manifest
    dims = store.dims
    total = store.file_bytes
    print(f"store          {store.path}")
    print(f"schema         {m['magic']} v{m['schema_version']}, tokenizer {m.get('tokenizer')}")
    print(
        f"dims           J={dims['J']} augmentations, S={dims['S']}"
        f" synthetic captions, K={dims['K']} teachers x D={dims['D']}"
    )
    print(f"embeddings     {store.embedding_dtype}")
    print(
        f"samples        {len(store)} in {store.num_shards} shards, {_human(total)}"
        + (f" ({_human(total / len(store))} per sample)" if len(store) else "")
    )
    if m.get("metadata"):
        print(f"metadata       {_short(str(m['metadata']), 200)}")
    print("columns (bytes in the shard files):")
    column_bytes = store.column_bytes()
    for name, n in column_bytes.items():
        share = f"{100 * n / total:5.1f}%" if total else "    -"
        print(f"  {name:<16} {_human(n):>11} {share}")
    if not len(store):
        return 0
    i = args.sample
    s = store.sample(i)
    print(f"sample {i} (uid {s.uid!r}, {os.path.basename(store.shard_path(i))}):")
    print(
        f"  image: {len(s.image)} bytes {_image_kind(s.image)}, stored"
        f" {s.width}x{s.height}, original {s.orig_width}x{s.orig_height}"
    )
    print(
        f"  caption: {_short(s.caption)} tokens"
        f" {s.caption_tokens.tolist()[:12]}{'...' if len(s.caption_tokens) > 12 else ''}"
    )
    for k, caption in enumerate(s.syn_captions[:3]):
        print(f"  syn_captions[{k}]: {_short(caption)}")
    if len(s.syn_captions) > 3:
        print(f"  ... {len(s.syn_captions) - 3} more synthetic captions")
    for j, rec in enumerate(s.aug[:3]):
        ops = ", ".join(f"({rec[f'op{k}']}, {rec[f'm{k}']:g})" for k in range(rec["n_ops"]))
        print(
            f"  aug[{j}]: box top={rec['top']} left={rec['left']} h={rec['height']} w={rec['width']}"
            f" ops [{ops}] flags {rec['flags']}"
        )
    if len(s.aug) > 3:
        print(f"  ... {len(s.aug) - 3} more augmentations")
    for line in _embedding_summary(store, i):
        print(line)
    print(f"  sha256: {s.sha256.hex() if s.sha256 else None}, flags {s.flags}")
    return 0


# --- verify ------------------------------------------------------------------


def _verify_arguments(p: argparse.ArgumentParser) -> None:
    _store_arguments(p)
    p.add_argument(
        "--state",
        metavar="FILE",
        help="resumable: record the shards checked and the problems found "
        "in FILE after every block of shards; a rerun with the same FILE skips them (progress bar on a "
        "terminal)",
    )


def _verify(args: argparse.Namespace) -> int:
    from mobileclip_fastload import Store, _core

    if args.state:
        from mobileclip_fastload.store.verify_progress import verify

        problems = verify(args.store, state=args.state, **_store_options(args))
        if not problems:
            store = _open_store(args)
            print(f"OK {args.store}: {store.num_shards} shards, {len(store)} samples, every checksum matches")
            return 0
    elif _is_url(args.store):
        # Remote: every shard is downloaded through the cache (checked on the way), then verified.
        store = _open_store(args)
        problems = store.verify()
        if not problems:
            print(f"OK {args.store}: {store.num_shards} shards, {len(store)} samples, every checksum matches")
            return 0
    else:
        args.store = Path(args.store)
        problems = _core.verify_store(str(args.store))
    if problems:
        for problem in problems:
            print(f"DAMAGED {problem}", file=sys.stderr)
        print(f"verify: {len(problems)} problem(s) in {args.store}", file=sys.stderr)
        return 1
    store = Store(args.store)
    print(
        f"OK {args.store}: {store.num_shards} shards, {len(store)} samples, "
        f"{_human(store.file_bytes)}, every checksum matches"
    )
    return 0


# --- convert (mobileclip_fastload.convert.cli) ---------------------------------


def _convert_arguments(p: argparse.ArgumentParser) -> None:
    from mobileclip_fastload.convert.cli import add_arguments

    add_arguments(p)


def _convert(args: argparse.Namespace) -> int:
    from mobileclip_fastload.convert.cli import run

    return run(args)


def _missing_extra(extra: str, modules: Sequence[str]) -> bool:
    """True (after saying how to install it) when a module that only `extra` installs is absent."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"error: {', '.join(missing)} not installed; this command needs the `{extra}` extra: "
            f"pip install 'mobileclip-fastload[{extra}]'",
            file=sys.stderr,
        )
    return bool(missing)


# --- reinforce (mobileclip_fastload.reinforce.cli) ------------------------------


def _reinforce_arguments(p: argparse.ArgumentParser) -> None:
    from mobileclip_fastload.reinforce.cli import add_arguments

    add_arguments(p)


def _reinforce(args: argparse.Namespace) -> int:
    if _missing_extra("reinforce", ("open_clip",)):
        return 2
    from mobileclip_fastload.reinforce.cli import run

    return run(args)


# --- show (mobileclip_fastload.show.cli) ----------------------------------------


def _show_arguments(p: argparse.ArgumentParser) -> None:
    from mobileclip_fastload.show.cli import add_arguments

    _store_arguments(p)
    add_arguments(p)


def _show(args: argparse.Namespace) -> int:
    if _missing_extra("show", ("matplotlib",)):
        return 2
    from mobileclip_fastload.show.cli import run

    return run(args, _open_store(args))


# --- demo ----------------------------------------------------------------------


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the generated shards and store here (default: a temporary directory)",
    )
    p.add_argument("--samples", type=int, default=48, help="number of samples to generate (default 48)")
    p.add_argument("-j", "--workers", type=int, default=2, help="converter worker processes (default 2)")
    p.add_argument("--num-threads", type=int, default=2, help="loader threads (default 2)")


def _demo(args: argparse.Namespace) -> int:
    from mobileclip_fastload.demo import run_demo

    return run_demo(args.workdir, samples=args.samples, workers=args.workers, num_threads=args.num_threads)


# --- train (the `mobileclip_fastload_train` package; the `train` extra installs its dependencies) ---


def _train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("train_args", nargs=argparse.REMAINDER)


def _train(args: argparse.Namespace) -> int:
    if _missing_extra("train", ("timm", "open_clip")):
        return 2
    from mobileclip_fastload_train.train import main as train_main

    train_main(args.train_args)
    return 0


# --- evaluate / plot (the `mobileclip_fastload_train` package; evaluate needs the `eval` extra) -----


def _forwarded_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("forwarded", nargs=argparse.REMAINDER)


def _evaluate(args: argparse.Namespace) -> int:
    if _missing_extra("train", ("timm", "open_clip")) or _missing_extra("eval", ("clip_benchmark",)):
        return 2
    from mobileclip_fastload_train.benchmark_suite import main as evaluate_main

    return evaluate_main(args.forwarded)


def _plot(args: argparse.Namespace) -> int:
    if _missing_extra("train", ("matplotlib",)):
        return 2
    from mobileclip_fastload_train.plot import main as plot_main

    return plot_main(args.forwarded)


# --- export (mobileclip_fastload_train.export; needs the `train` and `export` extras) ---------------


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "checkpoint",
        type=Path,
        help="training checkpoint (this project's, an open_clip state dict or Apple's MobileCLIP-S0 layout)",
    )
    p.add_argument(
        "--model", required=True, help="model name as mobileclip_fastload_train.models.create_model knows it"
    )
    p.add_argument(
        "--format",
        choices=("onnx", "coreml"),
        default="onnx",
        help="graph format (default onnx; Core ML converts on Linux, runs on macOS/iOS)",
    )
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="weights and compute (default fp32)")
    p.add_argument("-o", "--output", type=Path, required=True, help="directory for the two encoders and runtime.json")


def _export(args: argparse.Namespace) -> int:
    runtime = {"onnx": ("onnx", "onnxruntime"), "coreml": ("coremltools",)}[args.format]
    if _missing_extra("train", ("timm", "open_clip")) or _missing_extra("export", runtime):
        return 2
    from mobileclip_fastload_train.export import export_model

    try:
        path = export_model(args.checkpoint, args.model, args.output, args.format, args.precision)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"exported {args.model} ({args.format}, {args.precision}) to {path.parent}; runtime config {path}")
    return 0


SUBCOMMANDS: list[Subcommand] = [
    Subcommand(
        "demo",
        "end to end on a small embedded sample: shards -> convert -> store -> loader, pixel-checked",
        _demo_arguments,
        _demo,
    ),
    Subcommand("inspect", "show a store's schema, sizes per column and one sample", _inspect_arguments, _inspect),
    Subcommand(
        "show",
        "write an HTML view of a store: samples, replayed augmentations, captions, teacher agreement",
        _show_arguments,
        _show,
    ),
    Subcommand(
        "verify", "recheck every checksum; exit 1 naming shard and column on damage", _verify_arguments, _verify
    ),
    Subcommand("convert", "convert DataCompDR WebDataset shards into a DR store", _convert_arguments, _convert),
    Subcommand(
        "reinforce",
        "reinforce image-text pairs (captions, augmentations, teacher embeddings) into a DR store",
        _reinforce_arguments,
        _reinforce,
    ),
    Subcommand(
        "train",
        "train a MobileCLIP model on a DR store (python -m mobileclip_fastload_train.train; needs the `train` extra)",
        _train_arguments,
        _train,
        forwards_arguments=True,
    ),
    Subcommand(
        "evaluate",
        "run clip_benchmark's suite on a checkpoint (python -m mobileclip_fastload_train.evaluate; needs the "
        "`eval` extra)",
        _forwarded_arguments,
        _evaluate,
        forwards_arguments=True,
    ),
    Subcommand(
        "plot",
        "draw a run's curves from RUN_DIR/metrics.jsonl into a PNG (python -m mobileclip_fastload_train.plot)",
        _forwarded_arguments,
        _plot,
        forwards_arguments=True,
    ),
    Subcommand(
        "export",
        "export a checkpoint's folded image and text encoders (ONNX or Core ML) and runtime.json",
        _export_arguments,
        _export,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    from mobileclip_fastload import __version__

    parser = argparse.ArgumentParser(prog="mobileclip-fastload", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in SUBCOMMANDS:
        # a forwarding subcommand's parser recognises no option prefix, so "--x" stays an argument
        options = {"add_help": False, "prefix_chars": "\0"} if cmd.forwards_arguments else {}
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, **options)
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mobileclip_fastload import FastloadError

    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except (FastloadError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
