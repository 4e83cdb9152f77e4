"""``convert()``: DataCompDR WebDataset shards -> a DR store directory."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from mobileclip_fastload.convert.options import (
    DEFAULT_MAX_EMBEDDING_BYTES,
    DEFAULT_TARGET_SHARD_BYTES,
    VERIFY_RESUMED,
    ConvertOptions,
    Dims,
    check_choice,
)
from mobileclip_fastload.convert.probe import probe
from mobileclip_fastload.convert.report import CONVERTED, RESUMED, ConvertReport, ShardReport
from mobileclip_fastload.convert.shard_task import (
    DONE_DIR,
    done_record_path,
    make_tasks,
    run_shard_task,
    task_fingerprint,
)
from mobileclip_fastload.ingest.executors import EXECUTORS, default_workers, run_tasks
from mobileclip_fastload.ingest.images import DEFAULT_FORMATS, DEFAULT_MAX_IMAGE_PIXELS
from mobileclip_fastload.ingest.progress import Progress, TaskProgress, input_bytes
from mobileclip_fastload.ingest.store_io import remove_stale_temporaries
from mobileclip_fastload.ingest.torchrun import Ranks
from mobileclip_fastload.store import caption_sets, output_folder

REPORT_NAME = "convert_report.json"

#: what the process pool's forkserver imports once, so its workers start warm
WORKER_PRELOAD = ("mobileclip_fastload.convert.worker_preload",)


def convert(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    layout: str = "joined",
    image_shards: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    workers: int | None = None,
    embedding_dtype: str = "float16",
    max_augmentations: int | None = None,
    target_shard_bytes: int = DEFAULT_TARGET_SHARD_BYTES,
    executor: str = "process",
    progress: bool = True,
    syn_key: str | Sequence[str] | None = None,
    syn_key_regex: str | None = None,
    num_teachers: int = 2,
    dims: tuple[int, int, int, int] | Dims | None = None,
    verify_resumed: str = "checksum",
    image_formats: Iterable[str] = DEFAULT_FORMATS,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    max_embedding_bytes: int = DEFAULT_MAX_EMBEDDING_BYTES,
    metadata: dict | None = None,
    overwrite: bool = False,
) -> ConvertReport:
    """Convert DataCompDR shards into a DR store at ``output`` and return the report.

    inputs: brace pattern(s) / paths / directories of DR (joined: DR + image) tars.
    layout: ``"joined"`` (each sample has image, txt and DR members) or ``"separate"``
        (DR tars + img2dataset ``image_shards``, joined by uid, then key; image shards
        are paired with DR shards by file name, else by position).
    embedding_dtype: ``"float16"`` (default), ``"bfloat16"`` or ``"int8"`` (per-row scale);
        the report gives the resulting cosine error against the float32 source.
    max_augmentations: keep only the first N augmentations (J = N).
    target_shard_bytes: an input shard becomes several store shards above this size.
    executor: ``"process"`` (local pool of ``workers``, started with multiprocessing's
        forkserver: in a script, call ``convert`` under ``if __name__ == "__main__":`` as
        any spawn/forkserver multiprocessing code must), ``"ray"`` (one task per shard on
        the cluster ``ray.init`` connects to), ``"inline"`` (sequential, this process) or
        ``"torchrun"`` (this process is one rank of ``torchrun --nproc-per-node=N``: it converts
        every N-th shard inline; rank 0 writes the manifest and report once all ranks finished).
    syn_key: the synthetic caption set(s) to store: one name or a list of names, each
        ``"syn_text"``, ``"syn_text_<tag>"`` or just ``"<tag>"``, stored in the given order.
    syn_key_regex: instead, the syn.json keys this regex picks, as Apple's
        ``--dataset-reinforcement-syn-text-key-regex`` does (``re.match``), in name order.
        Default (neither): every ``syn_text*`` set of the input, in name order. The sets and
        each one's S_i come from the first usable sample; every sample must have every chosen
        set with its S_i, else it is skipped and counted (``missing_field`` / ``shape_mismatch``).
        The store lists them as its ``caption_sets`` (docs/FORMAT.md "Caption sets"); the one set
        ``syn_text`` alone is the plain store, without the key.
    num_teachers: K; D is the embedding width / K (DataCompDR: 2 x 768).
    dims: (J, S, K, D) to skip inferring them from the first usable sample; the store then
        holds the one set ``syn_key`` names (default ``syn_text``) with S captions.
    verify_resumed: ``"checksum"`` (size + whole-file xxh3) or ``"size"``: how an
        earlier run's outputs are checked before its shard is skipped.
    overwrite: replace what ``output`` holds (a finished store, another tool's run);
        without it those are refused with ``StoreExistsError`` (see
        ``mobileclip_fastload.store.output_folder``). Files of no store are never deleted.

    Resumable: each input shard's outputs and done record are written atomically;
    re-running skips finished shards and first removes the temporary files of
    writers that were killed; the manifest is (re)written at the end from all
    finished shards, with the report next to it (``convert_report.json``). Killing
    the converting process (any signal) also ends its pool workers.
    """
    t0 = time.perf_counter()
    output = os.fspath(output)
    check_choice("executor", executor, EXECUTORS)
    check_choice("verify_resumed", verify_resumed, VERIFY_RESUMED)
    if max_augmentations is not None and max_augmentations < 1:
        raise ValueError("max_augmentations must be >= 1")
    if num_teachers < 1:
        raise ValueError("num_teachers must be >= 1")
    syn_keys = _syn_key_list(syn_key)
    if syn_keys and syn_key_regex is not None:
        raise ValueError("give syn_key (names) or syn_key_regex, not both")
    if syn_key_regex is not None:
        caption_sets.compile_set_regex(syn_key_regex)  # a bad pattern fails before any input is read
    folder = output_folder.survey(output, "convert")
    output_folder.check_before_reading(folder, overwrite)
    tasks = make_tasks(inputs, output, layout=layout, image_shards=image_shards)

    if dims is None:
        resolved_dims, resolved_sets = probe(
            [t.input for t in tasks],
            syn_keys=syn_keys,
            syn_key_regex=syn_key_regex,
            num_teachers=num_teachers,
            max_augmentations=max_augmentations,
        )
    else:
        resolved_dims = dims if isinstance(dims, Dims) else Dims(*dims)
        if max_augmentations is not None and max_augmentations != resolved_dims.J:
            raise ValueError(f"dims J={resolved_dims.J} contradicts max_augmentations={max_augmentations}")
        if len(syn_keys) > 1 or syn_key_regex is not None:
            raise ValueError("dims fixes one caption set of S captions: choose several sets without dims")
        name = caption_sets.set_name(syn_keys[0]) if syn_keys else caption_sets.PLAIN_SET_NAME
        resolved_sets = ((name, resolved_dims.S),)
    opts = ConvertOptions(
        layout=layout,
        dims=resolved_dims,
        caption_sets=resolved_sets,
        embedding_dtype=embedding_dtype,
        truncate_augmentations=max_augmentations is not None,
        target_shard_bytes=int(target_shard_bytes),
        image_formats=tuple(image_formats),
        max_image_pixels=int(max_image_pixels),
        max_embedding_bytes=int(max_embedding_bytes),
    )

    ranks = Ranks.of(executor)
    ranks.join()
    output_folder.check_rerun(folder, overwrite, lambda: _same_run(output, tasks, opts))
    # Created only now: a run that fails on its inputs leaves no folder behind.
    output_folder.prepare(folder, overwrite)
    ranks.barrier()  # every rank has checked the folder before any writes into it
    for d in (output, os.path.join(output, DONE_DIR)):  # left by a run that was killed
        remove_stale_temporaries(d)

    mine = ranks.mine(tasks)
    workers = default_workers() if workers is None else max(1, int(workers))
    if executor in ("inline", "torchrun"):
        workers = 1
    planned = {t.index: input_bytes(t.input) + input_bytes(t.image_input) for t in mine}
    bar = Progress(sum(planned.values()), len(mine), enabled=progress and ranks.writes_store)
    tracked = TaskProgress(planned, bar)
    try:
        run_tasks(
            executor,
            mine,
            opts,
            workers=workers,
            verify=verify_resumed,
            on_done=tracked.on_done,
            on_progress=tracked.on_progress,
            task_fn=run_shard_task,
            preload=WORKER_PRELOAD,
        )
    finally:
        bar.close()
    reports: dict[int, ShardReport] = ranks.gather(tracked.reports)

    ordered = [reports[t.index] for t in tasks]
    report = ConvertReport(
        output=output,
        layout=layout,
        embedding_dtype=embedding_dtype,
        dims=resolved_dims.as_dict(),
        caption_sets=[list(s) for s in resolved_sets],
        shards=ordered,
        workers=workers if executor != "torchrun" else ranks.world,
        executor=executor,
    )
    if not ranks.writes_store:
        report.seconds = time.perf_counter() - t0
        return report
    from mobileclip_fastload.ingest.store_io import write_store_manifest

    finished = [r for r in ordered if r.status in (CONVERTED, RESUMED)]
    meta = {
        "converter": {
            "tool": "mobileclip_fastload.convert",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "layout": layout,
            # the source key(s), as the syn.json keys were named
            "syn_key": resolved_sets[0][0] if len(resolved_sets) == 1 else [k for k, _ in resolved_sets],
            "input_shards": len(tasks),
            "input_shards_in_store": len(finished),
            "max_augmentations": max_augmentations,
            "samples_in": report.samples_in,
            "samples_skipped": report.skipped,
        },
        **(metadata or {}),
    }
    write_store_manifest(output, [info for r in finished for info in r.outputs], opts, meta)
    report.manifest_written = True
    report.seconds = time.perf_counter() - t0
    report.write_json(os.path.join(output, REPORT_NAME))
    return report


def _same_run(output: str, tasks: list, opts: ConvertOptions) -> bool:
    """Whether the finished store in ``output`` was made by this run or a part of it (every done
    record is one of this run's tasks, same inputs and options): re-running it checks, repairs, adds."""

    def check(task):
        def matches(earlier: dict) -> bool:
            try:
                return earlier == task_fingerprint(task, opts)
            except OSError:  # input deleted since: the same options still make it the same run
                return earlier.get("options") == opts.fingerprint()

        return matches

    expected = {os.path.basename(done_record_path(output, t.task_id)): check(t) for t in tasks}
    return output_folder.done_records_match(os.path.join(output, DONE_DIR), expected)


def _syn_key_list(syn_key: str | Sequence[str] | None) -> list[str]:
    """``syn_key`` as a list of names (empty: none given)."""
    if syn_key is None:
        return []
    keys = [syn_key] if isinstance(syn_key, str) else list(syn_key)
    if not all(isinstance(k, str) and k for k in keys):
        raise ValueError(f"syn_key must be a non-empty name or a list of them, got {syn_key!r}")
    return keys
