"""One input shard -> its store shard file(s) (+ a DataCompDR tar) and a done record.

Runs in a worker (inline, process pool, Ray task or one torchrun rank). The
pipeline is one step deep: while the teachers embed chunk n (``opts.images_per_chunk``
images, ``batch_augmented_images`` // J, x J augmentations per batch), threads already
decode, augment and replay chunk n + 1 (``prepare.prepare_sample``).

Resumable like ``convert``: outputs are written atomically, the done record
last; a re-run keeps a shard whose done record matches the input file, the
options and intact outputs, and redoes any other from scratch (removing stale
parts), so an interrupted run finishes with the same bytes as an uninterrupted
one. Stage ``"captions"`` only captions (``_captions/<task>.jsonl``); a later
``"all"`` run joins those captions by uid instead of generating them again.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from mobileclip_fastload.ingest.resume import write_done_record
from mobileclip_fastload.ingest.skips import DUPLICATE_KEY, SkipSample
from mobileclip_fastload.ingest.task import ProgressFn, Throttle, run_task
from mobileclip_fastload.reinforce.captioners import caption_seed
from mobileclip_fastload.reinforce.inputs import ReinforceTask, open_reader
from mobileclip_fastload.reinforce.options import ReinforceOptions
from mobileclip_fastload.reinforce.prepare import PreparedSample, prepare_sample, sample_uid
from mobileclip_fastload.reinforce.report import ReinforceShardReport
from mobileclip_fastload.reinforce.resume import (
    done_record_path,
    finished_report,
    load_caption_pass,
    remove_stale_outputs,
    task_fingerprint,
)
from mobileclip_fastload.reinforce.sinks import CaptionSink, StoreSink


def run_reinforce_task(
    task: ReinforceTask, opts: ReinforceOptions, *, verify: str = "checksum", progress: ProgressFn | None = None
) -> ReinforceShardReport:
    """Reinforce (or caption) one input shard; never raises for bad data (it is reported instead)."""
    files: dict[str, int] = {}

    def work(report: ReinforceShardReport, throttle: Throttle) -> None:
        remove_stale_outputs(task, opts)
        _run(task, opts, report, throttle, files)

    def write_done(report: ReinforceShardReport) -> None:
        write_done_record(
            done_record_path(task.output_dir, task.task_id, opts.stage),
            task_fingerprint(task, opts, opts.stage),
            report,
            files,
        )

    return run_task(
        lambda: finished_report(task, opts, verify, opts.stage),
        lambda: ReinforceShardReport(task.task_id, task.input, stage=opts.stage),
        (task.input,),
        work,
        write_done,
        progress,
    )


def _timed_prepare(raw, opts, views, captioners):
    t0 = time.thread_time()
    s = prepare_sample(raw, opts, views, captioners)
    return s, time.thread_time() - t0


def _run(
    task: ReinforceTask, opts: ReinforceOptions, report: ReinforceShardReport, throttle: Throttle, files: dict
) -> None:
    from mobileclip_fastload.reinforce.teachers import Teacher

    reader = open_reader(task)
    report.bytes_in = reader.size
    captions_only = opts.stage == "captions"
    teachers = [] if captions_only else [Teacher(spec, opts.device, opts.precision) for spec in opts.teachers]
    views = list(dict.fromkeys(t.view.replay_key for t in teachers))
    earlier = {} if captions_only else load_caption_pass(task, opts)
    sink = CaptionSink(task, report, files) if captions_only else StoreSink(task, opts, report, teachers, files)
    limit = opts.max_listed_per_reason
    keys_seen: set[str] = set()
    uids_seen: set[str] = set()
    last_pos = 0

    def chunks(pool):
        nonlocal last_pos
        chunk = []
        for raw in reader:
            report.samples_in += 1
            throttle.add(reader.bytes_read - last_pos, 1)
            last_pos = reader.bytes_read
            uid = None
            try:
                if raw.key in keys_seen:
                    raise SkipSample(DUPLICATE_KEY, f"key {raw.key!r} appears again later in the shard")
                keys_seen.add(raw.key)
                uid = sample_uid(raw)
                if uid in uids_seen:
                    raise SkipSample(DUPLICATE_KEY, f"uid {uid!r} already taken by an earlier sample of this shard")
                uids_seen.add(uid)
            except SkipSample as s:
                report.skip(s.reason, uid, raw.key, s.detail, limit)
                continue
            todo = [c for c in opts.captioners if c.tag not in earlier.get(uid, {})]  # still to caption
            chunk.append((raw, uid, pool.submit(_timed_prepare, raw, opts, views, todo)))
            if len(chunk) == opts.images_per_chunk:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    with ThreadPoolExecutor(opts.num_threads) as pool:
        it = chunks(pool)
        current = next(it, None)
        try:
            while current is not None:
                upcoming = next(it, None)  # reads and submits the next chunk before the teachers run
                ready = []
                for raw, uid, fut in current:
                    try:
                        s, cpu = fut.result()
                    except SkipSample as e:
                        report.skip(e.reason, uid, raw.key, e.detail, limit)
                        continue
                    report.cpu_replay_seconds += cpu
                    ready.append(s)
                if ready:
                    captions = _captions(ready, opts, earlier, report)
                    for s in ready:
                        s.caption_inputs = {}
                    sink.add(ready, captions)
                current = upcoming
        except BaseException:
            sink.abort()
            raise
    sink.close()
    throttle.add(reader.bytes_read - last_pos, 0)
    report.tar_problem = reader.error


def _captions(
    ready: list[PreparedSample], opts: ReinforceOptions, earlier: dict, report: ReinforceShardReport
) -> list[dict[str, list[str]]]:
    """{tag: S captions} per sample, from the earlier captioning pass where it has them."""
    out: list[dict[str, list[str]]] = [dict() for _ in ready]
    for c in opts.captioners:
        todo = [i for i, s in enumerate(ready) if c.tag not in earlier.get(s.uid, {})]
        for i, s in enumerate(ready):
            if i not in todo:
                out[i][c.tag] = list(earlier[s.uid][c.tag])
        report.captions_from_pass += (len(ready) - len(todo)) * c.num_captions
        if todo:
            t0 = time.perf_counter()
            caps = c.caption(
                [ready[i].caption_inputs[c.tag] for i in todo],
                [caption_seed(opts.seed, ready[i].uid, c.tag) for i in todo],
                opts.device,
            )
            report.caption_seconds += time.perf_counter() - t0
            for i, got in zip(todo, caps):
                if len(got) != c.num_captions or not all(isinstance(t, str) for t in got):
                    raise RuntimeError(
                        f"captioner {c.tag!r} returned {len(got)} captions for {ready[i].uid!r}, "
                        f"expected {c.num_captions}"
                    )
                out[i][c.tag] = got
            report.captions_generated += len(todo) * c.num_captions
    return out
