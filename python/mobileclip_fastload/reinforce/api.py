"""``reinforce()``: plain image-text pairs -> a DR store (and DataCompDR-format shards)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence

from mobileclip_fastload.ingest.executors import EXECUTORS, default_workers, ray_cluster_resources, run_tasks
from mobileclip_fastload.ingest.options import DEFAULT_TARGET_SHARD_BYTES, VERIFY_RESUMED, Dims, check_choice
from mobileclip_fastload.ingest.progress import Progress, TaskProgress, input_bytes
from mobileclip_fastload.ingest.torchrun import Ranks
from mobileclip_fastload.reinforce import devices
from mobileclip_fastload.reinforce.augmentation import DEFAULT_AUG_SIZE, RRC_RATIO, RRC_SCALE
from mobileclip_fastload.reinforce.captioners import Captioner, OpenClipCaptioner
from mobileclip_fastload.reinforce.inputs import DEFAULT_ROWS_PER_SHARD, make_tasks
from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec
from mobileclip_fastload.reinforce.options import (
    DEFAULT_BATCH_AUGMENTED_IMAGES,
    DEFAULT_MIN_IMAGE_SIZE,
    ReinforceOptions,
)
from mobileclip_fastload.reinforce.report import CONVERTED, RESUMED, ReinforceReport, report_path
from mobileclip_fastload.reinforce.resume import DONE_DIR, done_record_path, task_fingerprint
from mobileclip_fastload.reinforce.shard_task import run_reinforce_task
from mobileclip_fastload.reinforce.teachers import embed_dim
from mobileclip_fastload.store import output_folder

#: DataCompDR's teachers, two ViT-L-14 (768-d each, concatenated); resolved (downloaded) by open_clip where
#: the network allows.
DATACOMPDR_TEACHERS = (OpenClipSpec("ViT-L-14", "openai"), OpenClipSpec("ViT-L-14", "datacomp_xl_s13b_b90k"))


def reinforce(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    teachers: Sequence[OpenClipSpec | str] = DATACOMPDR_TEACHERS,
    captioners: Sequence[Captioner] | None = None,
    num_augmentations: int = 30,
    seed: int = 0,
    embedding_dtype: str = "float16",
    datacompdr_output: str | os.PathLike | None = None,
    stage: str = "all",
    executor: str = "inline",
    workers: int | None = None,
    num_threads: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    batch_augmented_images: int = DEFAULT_BATCH_AUGMENTED_IMAGES,
    image_root: str | os.PathLike | None = None,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    min_image_size: int = DEFAULT_MIN_IMAGE_SIZE,
    aug_size: int = DEFAULT_AUG_SIZE,
    target_shard_bytes: int = DEFAULT_TARGET_SHARD_BYTES,
    verify_resumed: str = "checksum",
    progress: bool = True,
    metadata: dict | None = None,
    overwrite: bool = False,
) -> ReinforceReport:
    """Reinforce image-text pairs as MobileCLIP's dataset reinforcement does; returns the report.

    inputs: WebDataset tars (brace patterns, globs, folders, paths; image + ``txt``
        [+ img2dataset ``json``] per sample), or caption tables (``.csv`` / ``.jsonl``
        with ``image`` [relative to the table or ``image_root``], ``caption``, optional
        ``uid`` and ``url``; ``rows_per_shard`` rows per task).
    teachers: K open_clip models (``OpenClipSpec`` or ``"NAME[:PRETRAINED]"``), all of one
        embedding width D; each embeds every augmentation replayed at its own size and
        interpolation, normalised with its own mean/std, and the real + synthetic captions.
    captioners: S_i captions per image each (default: open_clip CoCa ``coca_ViT-L-14``, top-p
        0.9, 5 captions). The store keeps every captioner's set: the first as ``syn_text``,
        the others as ``syn_text_<tag>`` (the store's ``caption_sets``; one captioner makes
        the plain store), as DataCompDR output names them (``syn_text_<tag>`` with
        ``syn_text_<tag>_emb``).
    num_augmentations: J parameter sets per image (RandomResizedCrop + RandAugment as
        torchvision draws them, entry j seeded by (seed, uid, j)).
    stage: ``"all"`` or ``"captions"`` (only caption, into ``<output>/_captions``; a later
        ``"all"`` run joins them by uid instead of captioning again).
    overwrite: replace what ``output`` holds (a finished store, another tool's run);
        without it those are refused with ``StoreExistsError``
        (``mobileclip_fastload.store.output_folder``). Files of no store are never deleted.
    executor: ``"inline"``, ``"process"`` (``workers`` processes; call under
        ``if __name__ == "__main__":``), ``"ray"`` (one task per shard; a GPU each when
        ``device`` is CUDA) or ``"torchrun"`` (this process is one rank of
        ``torchrun --nproc-per-node=G``: it takes every G-th shard on ``cuda:LOCAL_RANK``;
        rank 0 writes the manifest once all ranks finished).
    num_threads: decode + augment + replay threads (and torch threads) per worker (default: the
        cores, split between the process workers or the node's torchrun ranks; Ray: 1 per
        CPU task, the cluster's CPUs per GPU for GPU tasks).
    device / precision: ``"auto"`` = CUDA with bf16 autocast when available, else CPU fp32.
        ``process`` on CUDA: one worker per GPU (``cuda:i``) unless ``workers`` says otherwise.
    batch_augmented_images: augmented images per teacher forward (a chunk holds this // J
        images, at least one), so a small J still feeds the GPU big batches.

    Resumable per input shard (atomic outputs, done records); the same inputs, seed and
    options give a byte-identical store.
    """
    t0 = time.perf_counter()
    output = os.fspath(output)
    check_choice("executor", executor, EXECUTORS)
    check_choice("verify_resumed", verify_resumed, VERIFY_RESUMED)
    folder = output_folder.survey(output, "reinforce")
    output_folder.check_before_reading(folder, overwrite)  # before any model is loaded
    if num_augmentations < 1:
        raise ValueError("num_augmentations must be >= 1")
    teacher_specs = tuple(t if isinstance(t, OpenClipSpec) else OpenClipSpec.parse(t) for t in teachers)
    if not teacher_specs:
        raise ValueError("at least one teacher is needed")
    captioners = tuple(captioners) if captioners is not None else (OpenClipCaptioner(),)
    widths = {t.describe(): embed_dim(t) for t in teacher_specs}
    if len(set(widths.values())) != 1:
        raise ValueError(f"every teacher must have the same embedding width (the store holds K x D): {widths}")
    S = sum(c.num_captions for c in captioners)  # every captioner's set is stored (opts.caption_sets)
    dims = Dims(num_augmentations, S, len(teacher_specs), next(iter(widths.values())))

    ranks = Ranks.of(executor)
    cores = default_workers()
    ray_options = None
    if executor == "ray":
        worker_plan, ray_options = devices.ray_plan(device, ray_cluster_resources(), num_threads)
    else:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        worker_plan = devices.plan(
            executor,
            device,
            cores=cores,
            gpu_count=gpus,
            workers=workers,
            num_threads=num_threads,
            local_rank=ranks.local_rank,
            local_world_size=ranks.local_world,
        )
    device = worker_plan.devices[0]
    if ranks.world > 1:  # the rank's GPU current before the group is made (ingest.torchrun makes it)
        devices.make_current(device)
    ranks.join()
    opts = ReinforceOptions(
        dims=dims,
        seed=int(seed),
        teachers=teacher_specs,
        captioners=captioners,
        embedding_dtype=embedding_dtype,
        aug_size=int(aug_size),
        min_image_size=int(min_image_size),
        target_shard_bytes=int(target_shard_bytes),
        datacompdr_dir=os.path.abspath(os.fspath(datacompdr_output)) if datacompdr_output is not None else None,
        stage=stage,
        device=device,
        precision=precision,
        batch_augmented_images=int(batch_augmented_images),
        num_threads=worker_plan.num_threads,
    )
    tasks = make_tasks(
        inputs, output, image_root=os.fspath(image_root) if image_root else None, rows_per_shard=rows_per_shard
    )
    # Only stage "all" writes a manifest: the captions stage replaces no store.
    output_folder.check_rerun(folder, overwrite, lambda: stage != "all" or _same_run(output, tasks, opts))
    # Created only now: a run that fails on its inputs leaves no folder behind.
    output_folder.prepare(folder, overwrite)
    ranks.barrier()  # every rank has checked the folder before any writes into it
    mine = ranks.mine(tasks)

    # bytes of input tars; caption tables count samples only (their image sizes are not known up front)
    planned = {t.index: input_bytes(t.input) if not t.is_table else 0 for t in mine}
    bar = Progress(
        sum(planned.values()) or None, len(mine), enabled=progress and ranks.writes_store, desc=f"reinforce:{stage}"
    )
    tracked = TaskProgress(planned, bar)
    try:
        run_tasks(
            executor,
            mine,
            opts,
            workers=worker_plan.workers,
            verify=verify_resumed,
            on_done=tracked.on_done,
            on_progress=tracked.on_progress,
            task_fn=run_reinforce_task,
            ray_options=ray_options,
            worker_setup=devices.place if executor == "inline" else devices.on_worker,
            worker_devices=worker_plan.devices,
            preload=("mobileclip_fastload.ingest.worker_preload",),
        )
    finally:
        bar.close()
    reports = ranks.gather(tracked.reports)

    ordered = [reports[t.index] for t in tasks if t.index in reports]
    report = ReinforceReport(
        output=output,
        stage=stage,
        embedding_dtype=embedding_dtype,
        dims=dims.as_dict(),
        shards=ordered,
        executor=executor,
        workers=worker_plan.workers if executor != "torchrun" else ranks.world,
    )
    report.metadata = _provenance(opts, len(tasks), metadata)
    if ranks.writes_store:
        if stage == "all":
            from mobileclip_fastload.ingest.store_io import write_store_manifest

            finished = [r for r in ordered if r.status in (CONVERTED, RESUMED)]
            write_store_manifest(output, [info for r in finished for info in r.outputs], opts, report.metadata)
            report.manifest_written = True
        report.seconds = time.perf_counter() - t0
        report.write_json(report_path(output, stage))
    report.seconds = time.perf_counter() - t0
    return report


def _same_run(output: str, tasks: list, opts: ReinforceOptions) -> bool:
    """Whether the finished store in ``output`` was made by exactly this run (the same tasks,
    inputs and options at stage "all"), so that re-running it only checks and repairs."""

    def check(task):
        return lambda earlier: earlier == task_fingerprint(task, opts, "all")

    names = {os.path.basename(done_record_path(output, t.task_id, "all")): check(t) for t in tasks}
    done = os.path.join(output, DONE_DIR)
    try:  # records of the captions stage sit beside them and are no other run
        captions = {n for n in os.listdir(done) if n.endswith(".captions.json")}
    except OSError:
        captions = set()
    names.update({n: (lambda earlier: True) for n in captions})
    return output_folder.done_records_match(done, names)


def _provenance(opts: ReinforceOptions, num_tasks: int, extra: dict | None) -> dict:
    """Manifest metadata: how the store was made (no timestamps: equal runs, equal bytes)."""
    return {
        "reinforce": {
            "tool": "mobileclip_fastload.reinforce",
            "seed": opts.seed,
            "augmentation": {
                "random_resized_crop": {"scale": list(RRC_SCALE), "ratio": list(RRC_RATIO)},
                "rand_augment": {"num_ops": 2, "magnitude": 9, "num_magnitude_bins": 31, "image_size": opts.aug_size},
                "seeding": "torch.Generator seeded by blake2b-64(seed, uid, j) >> 1, per entry",
            },
            "teachers": [
                {"model": t.name, "pretrained": t.pretrained, "init_seed": None if t.pretrained else t.init_seed}
                for t in opts.teachers
            ],
            "caption_sets": [c.tag for c in opts.captioners],
            "syn_captions_in_store": opts.captioners[0].tag,  # the captioner of set 0 (syn_text)
            "captioners": [c.fingerprint() for c in opts.captioners],
            "precision": opts.precision,
            "input_shards": num_tasks,
        },
        **(extra or {}),
    }
