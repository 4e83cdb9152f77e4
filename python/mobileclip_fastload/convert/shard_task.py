"""One input shard -> its own store shard file(s) + a done record. Runs in a worker.

Resumable and crash-safe: store shards are written atomically by the store
writer (temporary name + rename), and the done record, written last and also
atomically, is the only proof that the task finished. A re-run finds the done
record, checks that it was made from the same input file under the same
options and that every listed output is intact (size and whole-file xxh3), and
skips the task; otherwise the task is redone from scratch and its stale
outputs replaced.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from mobileclip_fastload.convert.options import ConvertOptions
from mobileclip_fastload.convert.report import ShardReport
from mobileclip_fastload.convert.sample_builder import ImagePart, build_sample
from mobileclip_fastload.ingest import resume
from mobileclip_fastload.ingest.images import IMAGE_EXTENSIONS
from mobileclip_fastload.ingest.inputs import expand_inputs, pair_image_shards, task_ids
from mobileclip_fastload.ingest.precision import CosineError
from mobileclip_fastload.ingest.resume import input_fingerprint
from mobileclip_fastload.ingest.skips import DUPLICATE_KEY, TRUNCATED_SAMPLE, SkipSample
from mobileclip_fastload.ingest.tar_samples import ShardUnreadable, TarIndex, TarSampleReader
from mobileclip_fastload.ingest.task import ProgressFn, Throttle, run_task

DONE_DIR = "_convert_done"
DONE_SCHEMA = 1


@dataclass(frozen=True)
class ShardTask:
    index: int
    task_id: str  # names the outputs: f"{task_id}-{part:03d}.arrow"
    input: str
    image_input: str | None
    output_dir: str


def make_tasks(inputs, output: str, *, layout: str, image_shards=None) -> list[ShardTask]:
    """One task per input shard (paired with its image shard when ``layout='separate'``)."""
    paths = expand_inputs(inputs)
    if not paths:
        raise ValueError(f"no input shards match {inputs!r}")
    image_paths: list[str | None] = [None] * len(paths)
    if layout == "separate":
        if image_shards is None:
            raise ValueError("layout='separate' needs image_shards (img2dataset tars)")
        expanded = expand_inputs(image_shards)
        if not expanded:
            raise ValueError(f"no image shards match {image_shards!r}")
        image_paths = pair_image_shards(paths, expanded)
    elif image_shards is not None:
        raise ValueError("image_shards is only used with layout='separate'")
    ids = task_ids(paths)
    return [ShardTask(i, ids[i], p, image_paths[i], output) for i, p in enumerate(paths)]


def done_record_path(output_dir: str, task_id: str) -> str:
    return resume.done_record_path(output_dir, DONE_DIR, task_id)


def task_fingerprint(task: ShardTask, opts: ConvertOptions) -> dict:
    return {
        "schema": DONE_SCHEMA,
        "input": input_fingerprint(task.input),
        "image_input": input_fingerprint(task.image_input),
        "options": opts.fingerprint(),
    }


def finished_report(task: ShardTask, opts: ConvertOptions, verify: str) -> ShardReport | None:
    """The report of an earlier run of this task, if it finished under the same inputs and
    options and its outputs are intact; else None (the task must run). An input deleted after it
    was converted keeps its conversion if that was made under the same options."""
    return resume.finished_report(
        done_record_path(task.output_dir, task.task_id),
        ShardReport,
        task.output_dir,
        verify,
        lambda: task_fingerprint(task, opts),
        when_input_gone=lambda earlier: {**earlier, "schema": DONE_SCHEMA, "options": opts.fingerprint()},
    )


def _remove_stale_outputs(task: ShardTask) -> None:
    """The task's done record, store parts and the temporaries of a killed run."""
    resume.remove_done_record(done_record_path(task.output_dir, task.task_id))
    resume.remove_task_files(task.output_dir, lambda name: resume.is_store_part(name, task.task_id))


def run_shard_task(
    task: ShardTask,
    opts: ConvertOptions,
    *,
    verify: str = "checksum",
    progress: ProgressFn | None = None,
) -> ShardReport:
    """Convert one input shard; never raises for bad data (it is reported instead)."""

    def work(report: ShardReport, throttle: Throttle) -> None:
        _remove_stale_outputs(task)
        _convert(task, opts, report, throttle)

    def write_done(report: ShardReport) -> None:
        resume.write_done_record(done_record_path(task.output_dir, task.task_id), task_fingerprint(task, opts), report)

    return run_task(
        lambda: finished_report(task, opts, verify),
        lambda: ShardReport(task.task_id, task.input, task.image_input),
        (task.input, task.image_input),
        work,
        write_done,
        progress,
    )


def _convert(task: ShardTask, opts: ConvertOptions, report: ShardReport, throttle: Throttle) -> None:
    from mobileclip_fastload.ingest.store_io import output_name, write_part
    from mobileclip_fastload.tokenizer import default_tokenizer

    tokenizer = default_tokenizer()
    reader = TarSampleReader(task.input)
    report.bytes_in = reader.size
    index: TarIndex | None = None
    if opts.layout == "separate":
        if task.image_input is None:
            raise ShardUnreadable(f"no image shard paired with {task.input}")
        index = TarIndex(task.image_input)
        report.image_tar_problem = index.error
        if index.duplicates:
            note = f"{len(index.duplicates)} image samples repeat a key or uid (first kept): {index.duplicates[:5]}"
            report.image_tar_problem = f"{index.error}; {note}" if index.error else note
        report.bytes_in += os.path.getsize(task.image_input)

    errors = CosineError()
    pending: list = []
    pending_bytes = 0
    part = 0
    keys_seen: set[str] = set()
    uids_seen: set[str] = set()
    matched_image_keys: set[str] = set()
    limit = opts.max_listed_per_reason
    last_pos = 0

    def flush() -> None:
        nonlocal pending, pending_bytes, part
        if not pending:
            return
        info = write_part(
            os.path.join(task.output_dir, output_name(task.task_id, part)),
            pending,
            opts,
        )
        report.outputs.append(info)
        report.bytes_out += info["file_bytes"]
        part += 1
        pending, pending_bytes = [], 0

    def image_lookup(uid: str, key: str) -> ImagePart | None:
        found = index.lookup(uid, key)
        if found is None:
            return None
        matched_image_keys.add(found.key)
        try:
            members = {ext: index.read(found, ext) for ext in (*IMAGE_EXTENSIONS, "txt") if ext in found.members}
        except (OSError, EOFError) as e:
            raise SkipSample(TRUNCATED_SAMPLE, f"image shard breaks inside this sample's image/txt: {e}") from None
        sha = (found.json or {}).get("sha256")
        downloaded = bytes.fromhex(sha) if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha) else None
        return ImagePart(members, found.json, downloaded)

    try:
        for raw in reader:
            report.samples_in += 1
            throttle.add(reader.bytes_read - last_pos, 1)
            last_pos = reader.bytes_read
            uid = None
            try:
                if raw.truncated:
                    raise SkipSample(TRUNCATED_SAMPLE, "the tar broke inside this sample")
                if raw.key in keys_seen:
                    raise SkipSample(DUPLICATE_KEY, f"key {raw.key!r} appears again later in the shard")
                keys_seen.add(raw.key)
                if raw.repeated_exts:
                    raise SkipSample(DUPLICATE_KEY, f"member(s) {raw.repeated_exts} repeated within the sample")
                built = build_sample(raw.key, raw.members, image_lookup if index is not None else None, opts, tokenizer)
                uid = built.sample.uid
                if uid in uids_seen:
                    raise SkipSample(DUPLICATE_KEY, f"uid {uid!r} already written from this shard")
            except SkipSample as s:
                report.skip(s.reason, uid or _uid_hint(raw.members), raw.key, s.detail, limit)
                continue
            uids_seen.add(uid)
            report.samples_written += 1
            flags = built.sample.flags
            report.rescaled += flags & 1
            report.sha256_verified += built.evidence == "sha256"
            report.img2dataset_sha256_verified += built.evidence == "img2dataset_sha256"
            report.unverified += built.evidence == "unverified"
            report.boxes_outside_original += built.boxes_outside
            report.image_kinds[built.image_kind] = report.image_kinds.get(built.image_kind, 0) + 1
            errors.merge(built.error)
            pending.append(built.sample)
            pending_bytes += built.approx_bytes
            if pending_bytes >= opts.target_shard_bytes:
                flush()
        flush()
    finally:
        if index is not None:
            index.close()
    throttle.add(reader.bytes_read - last_pos, 0)
    report.tar_problem = reader.error
    report.cosine_error = errors.as_dict()
    if index is not None:
        unmatched = [k for k in index.by_key if k not in matched_image_keys]
        report.images_without_dr_record = len(unmatched)
        report.unmatched_image_keys = unmatched[:limit]


def _uid_hint(members: dict[str, bytes]) -> str | None:
    """Best-effort uid of a skipped sample, for the report (its json may be what is broken)."""
    try:
        uid = json.loads(members.get("json", b"{}")).get("uid")
        return uid if isinstance(uid, str) else None
    except Exception:
        return None
