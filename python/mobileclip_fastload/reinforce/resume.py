"""Resuming: where a task's outputs and done record live, what a done record must match,
and cleaning up after a killed run.

A task's done record (``_reinforce_done/<task>.<stage>.json``) is written last and
atomically; it holds the fingerprint (input file, row range, options), the shard
report and the sizes of the other files written (DataCompDR tar, captions). A re-run
keeps a task only when all of that still holds and its store parts pass the reader's
checksums; otherwise the task is redone from scratch.
"""

from __future__ import annotations

import json
import os
import re

from mobileclip_fastload.reinforce.inputs import ReinforceTask
from mobileclip_fastload.reinforce.options import ReinforceOptions
from mobileclip_fastload.reinforce.report import RESUMED, ReinforceShardReport

DONE_DIR = "_reinforce_done"
CAPTIONS_DIR = "_captions"
DONE_SCHEMA = 1


def done_record_path(output_dir: str, task_id: str, stage: str) -> str:
    return os.path.join(output_dir, DONE_DIR, f"{task_id}.{stage}.json")


def captions_path(output_dir: str, task_id: str) -> str:
    return os.path.join(output_dir, CAPTIONS_DIR, f"{task_id}.jsonl")


def datacompdr_path(opts: ReinforceOptions, task_id: str) -> str | None:
    return os.path.join(opts.datacompdr_dir, f"{task_id}.tar") if opts.datacompdr_dir else None


def task_fingerprint(task: ReinforceTask, opts: ReinforceOptions, stage: str) -> dict:
    options = opts.fingerprint() if stage == "all" else opts.captions_fingerprint()
    return {"schema": DONE_SCHEMA, "stage": stage, "input": task.fingerprint(), "options": options}


def _file_intact(path: str | None, size: int | None) -> bool:
    try:
        return path is not None and os.path.getsize(path) == size
    except OSError:
        return False


def finished_report(task: ReinforceTask, opts: ReinforceOptions, verify: str, stage: str,
                    any_device: bool = False) -> ReinforceShardReport | None:
    """An earlier run's report of this task at ``stage`` if it finished under the same input
    and options and its outputs are intact; else None. ``any_device``: the captioning pass may
    have run on another device (joining a finished pass made elsewhere, not resuming one)."""
    from mobileclip_fastload.ingest.store_io import verify_output

    try:
        with open(done_record_path(task.output_dir, task.task_id, stage)) as f:
            record = json.load(f)
        expected = task_fingerprint(task, opts, stage)
        if any_device:
            record["fingerprint"]["options"].pop("caption_device", None)
            expected["options"].pop("caption_device", None)
        if record["fingerprint"] != expected:
            return None
        report = ReinforceShardReport.from_dict(record["report"])
        files = record.get("files", {})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for info in report.outputs:
        if not verify_output(os.path.join(task.output_dir, info["file"]), info, checksum=(verify == "checksum")):
            return None
    for path, size in files.items():
        if not _file_intact(path, size):
            return None
    report.status = RESUMED
    return report


def remove_stale_outputs(task: ReinforceTask, opts: ReinforceOptions) -> None:
    """This task's done record, store parts and the temporaries a killed run left behind."""
    try:
        os.unlink(done_record_path(task.output_dir, task.task_id, opts.stage))
    except FileNotFoundError:
        pass
    tid = re.escape(task.task_id)
    if opts.stage == "all":
        _unlink_matching(task.output_dir, re.compile(r"\.?" + tid + r"-\d{3,}\.arrow(\.tmp-.*)?"))
        if opts.datacompdr_dir:
            _unlink_matching(opts.datacompdr_dir, re.compile(r"\." + tid + r"\.tar\.tmp-.*"))
    else:
        _unlink_matching(os.path.join(task.output_dir, CAPTIONS_DIR), re.compile(r"\." + tid + r"\.jsonl\.tmp-.*"))


def _unlink_matching(folder: str, pattern: re.Pattern) -> None:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        if pattern.fullmatch(name):
            os.unlink(os.path.join(folder, name))


def load_caption_pass(task: ReinforceTask, opts: ReinforceOptions) -> dict[str, dict[str, list[str]]]:
    """uid -> {tag: captions} from a finished captioning pass of this task under the same
    captioning options, made on any device (a whole pass: one device per shard); {} when there is none."""
    if finished_report(task, opts, "size", "captions", any_device=True) is None:
        return {}
    out = {}
    with open(captions_path(task.output_dir, task.task_id), encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out[row["uid"]] = row["captions"]
    return out
