"""Reinforce's resume specifics over the ingest core's (``mobileclip_fastload.ingest.resume``): its done
records are per task and stage (``_reinforce_done/<task>.<stage>.json``), and besides the store parts a task
writes a captions file (stage ``"captions"``) or a DataCompDR tar (stage ``"all"``), listed by size in the
done record. A captioning pass made on another device is joined, not resumed (``load_caption_pass``).
"""

from __future__ import annotations

import json
import os

from mobileclip_fastload.ingest import resume
from mobileclip_fastload.reinforce.inputs import ReinforceTask
from mobileclip_fastload.reinforce.options import ReinforceOptions
from mobileclip_fastload.reinforce.report import ReinforceShardReport

DONE_DIR = "_reinforce_done"
CAPTIONS_DIR = "_captions"
DONE_SCHEMA = 1


def done_record_path(output_dir: str, task_id: str, stage: str) -> str:
    return resume.done_record_path(output_dir, DONE_DIR, f"{task_id}.{stage}")


def captions_path(output_dir: str, task_id: str) -> str:
    return os.path.join(output_dir, CAPTIONS_DIR, f"{task_id}.jsonl")


def datacompdr_path(opts: ReinforceOptions, task_id: str) -> str | None:
    return os.path.join(opts.datacompdr_dir, f"{task_id}.tar") if opts.datacompdr_dir else None


def task_fingerprint(task: ReinforceTask, opts: ReinforceOptions, stage: str) -> dict:
    options = opts.fingerprint() if stage == "all" else opts.captions_fingerprint()
    return {"schema": DONE_SCHEMA, "stage": stage, "input": task.fingerprint(), "options": options}


def _without_caption_device(fingerprint: dict) -> dict:
    options = {k: v for k, v in fingerprint["options"].items() if k != "caption_device"}
    return {**fingerprint, "options": options}


def finished_report(
    task: ReinforceTask, opts: ReinforceOptions, verify: str, stage: str, any_device: bool = False
) -> ReinforceShardReport | None:
    """An earlier run's report of this task at ``stage`` if it finished under the same input
    and options and its outputs are intact; else None. ``any_device``: the captioning pass may
    have run on another device (joining a finished pass made elsewhere, not resuming one)."""
    return resume.finished_report(
        done_record_path(task.output_dir, task.task_id, stage),
        ReinforceShardReport,
        task.output_dir,
        verify,
        lambda: task_fingerprint(task, opts, stage),
        compared=_without_caption_device if any_device else (lambda f: f),
    )


def remove_stale_outputs(task: ReinforceTask, opts: ReinforceOptions) -> None:
    """This task's done record, store parts and the temporaries a killed run left behind."""
    resume.remove_done_record(done_record_path(task.output_dir, task.task_id, opts.stage))
    tid = task.task_id
    if opts.stage == "all":
        resume.remove_task_files(task.output_dir, lambda name: resume.is_store_part(name, tid))
        if opts.datacompdr_dir:
            resume.remove_task_files(opts.datacompdr_dir, lambda name: name == f"{tid}.tar", finals=False)
    else:
        resume.remove_task_files(
            os.path.join(task.output_dir, CAPTIONS_DIR), lambda name: name == f"{tid}.jsonl", finals=False
        )


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
