"""``mobileclip-fastload reinforce INPUT... -o STORE [options]``."""

from __future__ import annotations

import argparse
import sys

HELP = "reinforce image-text pairs (WebDataset tars or an image folder + CSV/JSONL) into a DR store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mobileclip_fastload.ingest.cli_args import add_ingest_arguments
    from mobileclip_fastload.reinforce.captioners import DEFAULT_CAPTIONER, DEFAULT_CAPTIONER_PRETRAINED
    from mobileclip_fastload.reinforce.inputs import DEFAULT_ROWS_PER_SHARD
    from mobileclip_fastload.reinforce.options import DEFAULT_BATCH_AUGMENTED_IMAGES, DEFAULT_MIN_IMAGE_SIZE, STAGES

    add_ingest_arguments(
        p,
        inputs_help="WebDataset tars (brace patterns, globs, folders) or caption tables (.csv/.jsonl)",
        default_executor="inline",
        executor_help="inline; process (-j workers); ray (one task per shard); torchrun (run under torchrun, one "
        "rank per GPU)",
    )
    p.add_argument(
        "--teacher",
        action="append",
        default=None,
        metavar="NAME[:PRETRAINED]",
        help="open_clip teacher; repeat for an ensemble (default: ViT-L-14:openai and "
        "ViT-L-14:datacomp_xl_s13b_b90k). PRETRAINED: a tag or a weights file; none = random init",
    )
    p.add_argument(
        "--captioner",
        action="append",
        default=None,
        metavar="TAG=NAME[:PRETRAINED]",
        help=f"open_clip CoCa captioner; repeat for several caption sets (the store keeps each: the first as "
        f"syn_text, the others as syn_text_TAG; default: coca={DEFAULT_CAPTIONER}:{DEFAULT_CAPTIONER_PRETRAINED})",
    )
    p.add_argument(
        "--model-config",
        action="append",
        default=[],
        metavar="FILE.json",
        help="an open_clip model config to register (its file stem is the model name)",
    )
    p.add_argument("--init-seed", type=int, default=0, help="seed of random-init models (no PRETRAINED given)")
    p.add_argument("-J", "--num-augmentations", type=int, default=30, help="augmentations per image (default 30)")
    p.add_argument(
        "-S", "--num-captions", type=int, default=5, help="synthetic captions per image and captioner (default 5)"
    )
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling threshold (default 0.9)")
    p.add_argument("--caption-length", type=int, default=30, help="fixed caption output length in tokens (default 30)")
    p.add_argument(
        "--caption-images-per-call",
        type=int,
        default=0,
        help="images per CoCa generate call: 0 (default) = a whole chunk on CUDA (fast), 1 on the CPU; "
        "1 makes every sample's captions independent of the others; more batches (reproducible for "
        "the same inputs, options, GPU model and versions)",
    )
    p.add_argument(
        "--caption-precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="CoCa generation precision: auto = fp32 (generation is launch-bound; bf16 quantises top-p)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--stage",
        choices=STAGES,
        default="all",
        help="captions: only caption (a separate pass); all: everything (joins an earlier captioning pass by uid)",
    )
    p.add_argument(
        "--datacompdr-output",
        default=None,
        metavar="DIR",
        help="also write DataCompDR-format WebDataset shards (joined layout) here",
    )
    p.add_argument("--num-threads", type=int, default=None, help="decode + augment + replay threads per task")
    p.add_argument("--device", default="auto", help="auto / cpu / cuda (torchrun: cuda:LOCAL_RANK)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    p.add_argument(
        "--batch-augmented-images",
        type=int,
        default=DEFAULT_BATCH_AUGMENTED_IMAGES,
        help="augmented images per teacher forward (a chunk is this // J images; default "
        f"{DEFAULT_BATCH_AUGMENTED_IMAGES})",
    )
    p.add_argument(
        "--image-root", default=None, help="where the image paths of a caption table start (default: its folder)"
    )
    p.add_argument("--rows-per-shard", type=int, default=DEFAULT_ROWS_PER_SHARD, help="caption-table rows per task")
    p.add_argument(
        "--min-image-size", type=int, default=DEFAULT_MIN_IMAGE_SIZE, help="skip images whose shorter side is smaller"
    )


def _captioners(args) -> list:
    from mobileclip_fastload.reinforce.captioners import OpenClipCaptioner
    from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec

    specs = args.captioner or ["coca=coca_ViT-L-14:mscoco_finetuned_laion2B-s13B-b90k"]
    out = []
    for text in specs:
        tag, eq, model = text.partition("=")
        if not eq:
            tag, model = "coca" if not out else f"c{len(out)}", text
        spec = OpenClipSpec.parse(model, tuple(args.model_config))
        out.append(
            OpenClipCaptioner(
                OpenClipSpec(spec.name, spec.pretrained, spec.config_file, args.init_seed),
                tag=tag,
                num_captions=args.num_captions,
                top_p=args.top_p,
                seq_len=args.caption_length,
                images_per_call=args.caption_images_per_call,
                precision=args.caption_precision,
            )
        )
    return out


def run(args: argparse.Namespace) -> int:
    from mobileclip_fastload.ingest.cli_args import run_tool
    from mobileclip_fastload.reinforce.api import DATACOMPDR_TEACHERS, reinforce
    from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec
    from mobileclip_fastload.reinforce.report import report_path

    def call():
        teachers = DATACOMPDR_TEACHERS
        if args.teacher:
            teachers = []
            for k, text in enumerate(args.teacher):
                spec = OpenClipSpec.parse(text, tuple(args.model_config))
                # distinct random inits for two random teachers of one architecture
                teachers.append(OpenClipSpec(spec.name, spec.pretrained, spec.config_file, args.init_seed + 1 + k))
        return reinforce(
            args.inputs,
            args.output,
            teachers=teachers,
            captioners=_captioners(args),
            num_augmentations=args.num_augmentations,
            seed=args.seed,
            embedding_dtype=args.embedding_dtype,
            datacompdr_output=args.datacompdr_output,
            stage=args.stage,
            executor=args.executor,
            workers=args.workers,
            num_threads=args.num_threads,
            device=args.device,
            precision=args.precision,
            batch_augmented_images=args.batch_augmented_images,
            image_root=args.image_root,
            rows_per_shard=args.rows_per_shard,
            min_image_size=args.min_image_size,
            target_shard_bytes=args.target_shard_size,
            verify_resumed=args.verify_resumed,
            progress=not args.no_progress,
            overwrite=args.overwrite,
        )

    def show(report) -> None:
        if not args.quiet:
            print(report.summary())
            print(f"report: {report_path(args.output, args.stage)}")

    return run_tool("reinforce", call, show)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mobileclip_fastload reinforce", description=HELP)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
