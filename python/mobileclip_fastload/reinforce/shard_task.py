"""One input shard -> its store shard file(s) (+ a DataCompDR tar) and a done record.

Runs in a worker (inline, process pool, Ray task or one torchrun rank). The
pipeline is one step deep: while the teachers embed chunk n (``batch_images``
images x J augmentations per batch), threads already decode, augment and replay
chunk n + 1 (``prepare.prepare_sample``).

Resumable like ``convert``: outputs are written atomically, the done record
last; a re-run keeps a shard whose done record matches the input file, the
options and intact outputs, and redoes any other from scratch (removing stale
parts), so an interrupted run finishes with the same bytes as an uninterrupted
one. Stage ``"captions"`` only captions (``_captions/<task>.jsonl``); a later
``"all"`` run joins those captions by uid instead of generating them again.
"""

from __future__ import annotations

import json
import os
import re
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mobileclip_fastload.convert.precision import CosineError, encode
from mobileclip_fastload.convert.shard_task import ProgressFn, Throttle, output_name
from mobileclip_fastload.convert.skips import DUPLICATE_KEY, NON_FINITE_EMBEDDING, SkipSample
from mobileclip_fastload.convert.tar_samples import ShardUnreadable
from mobileclip_fastload.reinforce.captioners import caption_seed
from mobileclip_fastload.reinforce.datacompdr_export import DataCompDRTarWriter
from mobileclip_fastload.reinforce.inputs import ReinforceTask, open_reader
from mobileclip_fastload.reinforce.options import ReinforceOptions
from mobileclip_fastload.reinforce.prepare import PreparedSample, prepare_sample, sample_uid
from mobileclip_fastload.reinforce.report import CONVERTED, FAILED, RESUMED, UNREADABLE, ReinforceShardReport

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


def _write_json_atomic(path: str, obj) -> None:
    from mobileclip_fastload.store.atomic import write_text_atomic

    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_text_atomic(Path(path), json.dumps(obj))


def _file_intact(path: str | None, size: int | None) -> bool:
    try:
        return path is not None and os.path.getsize(path) == size
    except OSError:
        return False


def finished_report(task: ReinforceTask, opts: ReinforceOptions, verify: str, stage: str) -> ReinforceShardReport | None:
    """An earlier run's report of this task at ``stage`` if it finished under the same input
    and options and its outputs are intact; else None."""
    from mobileclip_fastload.convert.store_io import verify_output

    try:
        with open(done_record_path(task.output_dir, task.task_id, stage)) as f:
            record = json.load(f)
        if record["fingerprint"] != task_fingerprint(task, opts, stage):
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


def _remove_stale_outputs(task: ReinforceTask, opts: ReinforceOptions) -> None:
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


def run_reinforce_task(
    task: ReinforceTask, opts: ReinforceOptions, *, verify: str = "checksum", progress: ProgressFn | None = None
) -> ReinforceShardReport:
    """Reinforce (or caption) one input shard; never raises for bad data (it is reported instead)."""
    t0, c0 = time.perf_counter(), time.process_time()
    done = finished_report(task, opts, verify, opts.stage)
    if done is not None:
        if progress:
            progress(done.bytes_in, done.samples_in)
        return done
    report = ReinforceShardReport(task.task_id, task.input, stage=opts.stage)
    throttle = Throttle(progress)
    files: dict[str, int] = {}
    try:
        if not os.path.isfile(task.input):  # before any earlier output is removed
            raise ShardUnreadable(f"cannot read {task.input}: no such file")
        _remove_stale_outputs(task, opts)
        _run(task, opts, report, throttle, files)
    except ShardUnreadable as e:
        report.status, report.error = UNREADABLE, str(e)
    except Exception as e:  # a bug (or a model failure) must not take the other shards down
        report.status = FAILED
        report.error = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"
    throttle.add(0, 0, force=True)
    report.seconds = time.perf_counter() - t0
    report.cpu_seconds = time.process_time() - c0
    if report.status == CONVERTED:
        _write_json_atomic(
            done_record_path(task.output_dir, task.task_id, opts.stage),
            {"fingerprint": task_fingerprint(task, opts, opts.stage), "report": report.as_dict(), "files": files},
        )
    return report


def load_caption_pass(task: ReinforceTask, opts: ReinforceOptions) -> dict[str, dict[str, list[str]]]:
    """uid -> {tag: captions} from a finished captioning pass of this task under the same
    captioning options; {} when there is none."""
    if finished_report(task, opts, "size", "captions") is None:
        return {}
    out = {}
    with open(captions_path(task.output_dir, task.task_id), encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out[row["uid"]] = row["captions"]
    return out


def _timed_prepare(raw, opts, views, keep_rgb):
    t0 = time.thread_time()
    s = prepare_sample(raw, opts, views, keep_rgb)
    return s, time.thread_time() - t0


def _run(task: ReinforceTask, opts: ReinforceOptions, report: ReinforceShardReport, throttle: Throttle, files: dict) -> None:
    from mobileclip_fastload.reinforce.teachers import Teacher

    reader = open_reader(task)
    report.bytes_in = reader.size
    captions_only = opts.stage == "captions"
    teachers = [] if captions_only else [Teacher(spec, opts.device, opts.precision) for spec in opts.teachers]
    views = list(dict.fromkeys(t.view.replay_key for t in teachers))
    earlier = {} if captions_only else load_caption_pass(task, opts)
    sink = _CaptionSink(task, report, files) if captions_only else _StoreSink(task, opts, report, teachers, files)
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
            need_rgb = not all(c.tag in earlier.get(uid, {}) for c in opts.captioners)  # pixels for a captioner
            chunk.append((raw, uid, pool.submit(_timed_prepare, raw, opts, views, need_rgb)))
            if len(chunk) == opts.batch_images:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    with ThreadPoolExecutor(opts.threads) as pool:
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
                        s.rgb = None
                    sink.add(ready, captions)
                current = upcoming
        except BaseException:
            sink.abort()
            raise
    sink.close()
    throttle.add(reader.bytes_read - last_pos, 0)
    report.tar_problem = reader.error


def _captions(ready: list[PreparedSample], opts: ReinforceOptions, earlier: dict, report: ReinforceShardReport) -> list[dict[str, list[str]]]:
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
            caps = c.caption([ready[i].rgb for i in todo], [caption_seed(opts.seed, ready[i].uid, c.tag) for i in todo], opts.device)
            report.caption_seconds += time.perf_counter() - t0
            for i, got in zip(todo, caps):
                if len(got) != c.num_captions or not all(isinstance(t, str) for t in got):
                    raise RuntimeError(f"captioner {c.tag!r} returned {len(got)} captions for {ready[i].uid!r}, expected {c.num_captions}")
                out[i][c.tag] = got
            report.captions_generated += len(todo) * c.num_captions
    return out


class _CaptionSink:
    """Stage "captions": one JSON line per sample, ``{"uid", "captions": {tag: [...]}}``, published at the end."""

    def __init__(self, task: ReinforceTask, report: ReinforceShardReport, files: dict):
        from mobileclip_fastload.store.atomic import temp_name

        self.path = captions_path(task.output_dir, task.task_id)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.tmp = temp_name(Path(self.path))
        self.file = open(self.tmp, "w", encoding="utf-8")
        self.report, self.files = report, files

    def add(self, ready: list[PreparedSample], captions: list[dict]) -> None:
        for s, caps in zip(ready, captions):
            self.file.write(json.dumps({"uid": s.uid, "captions": caps}, ensure_ascii=False) + "\n")
        self.report.samples_written += len(ready)

    def close(self) -> None:
        from mobileclip_fastload.store.atomic import fsync_path

        self.file.close()
        fsync_path(self.tmp)
        os.replace(self.tmp, self.path)
        self.files[self.path] = os.path.getsize(self.path)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class _StoreSink:
    """Stage "all": teachers embed each chunk; samples go to store parts (and a DataCompDR tar)."""

    def __init__(self, task, opts: ReinforceOptions, report: ReinforceShardReport, teachers, files: dict):
        from mobileclip_fastload.tokenizer import default_tokenizer

        self.task, self.opts, self.report, self.teachers, self.files = task, opts, report, teachers, files
        # tokenizes captions while the teachers embed images (its own thread: the replay
        # pool's queue already holds the next chunk)
        self.token_pool = ThreadPoolExecutor(1)
        self.tokenizer = default_tokenizer()
        self.errors = CosineError()
        self.pending: list = []
        self.pending_bytes = 0
        self.part = 0
        tar = datacompdr_path(opts, task.task_id)
        self.tar = DataCompDRTarWriter(tar) if tar else None

    def add(self, ready: list[PreparedSample], captions: list[dict]) -> None:
        from mobileclip_fastload.store import Sample

        opts, dims = self.opts, self.opts.dims
        n, J, K, D = len(ready), dims.J, dims.K, dims.D
        primary = opts.captioners[0].tag
        extra = [c.tag for c in opts.captioners[1:]] if self.tar else []
        image_emb = np.empty((n, J, K, D), np.float32)
        text_rows = [[s.caption, *captions[i][primary]] for i, s in enumerate(ready)]
        extra_rows = [[t for tag in extra for t in captions[i][tag]] for i in range(n)]
        texts = [t for rows in text_rows for t in rows] + [t for rows in extra_rows for t in rows]
        text_emb_all = np.empty((len(texts), K, D), np.float32)
        t0 = time.perf_counter()
        tokens = [self.token_pool.submit(teacher.tokenize, texts) for teacher in self.teachers]
        inputs: dict = {}  # ImageView -> model input, shared by the teachers that see the same view
        for k, teacher in enumerate(self.teachers):
            if teacher.view not in inputs:
                pixels = np.concatenate([s.pixels[teacher.view.replay_key] for s in ready])  # all J of each image, one batch
                inputs = {teacher.view: teacher.to_model_input(pixels)}  # keep one on the device at a time
            image_emb[:, :, k] = teacher.embed_images(None, inputs[teacher.view]).reshape(n, J, D)
        del inputs
        for k, teacher in enumerate(self.teachers):
            text_emb_all[:, k] = teacher.embed_texts(texts, tokens[k].result())
        self.report.teacher_seconds += time.perf_counter() - t0
        n_main = n * (1 + dims.S)
        text_emb = text_emb_all[:n_main].reshape(n, 1 + dims.S, K * D)
        extra_emb = text_emb_all[n_main:].reshape(n, len(extra) * dims.S, K * D) if extra else None
        for i, s in enumerate(ready):
            img_enc = encode(image_emb[i].reshape(J, K * D), opts.embedding_dtype, K)
            txt_enc = encode(text_emb[i], opts.embedding_dtype, K)
            if not (np.isfinite(img_enc.decoded).all() and np.isfinite(txt_enc.decoded).all()):
                self.report.skip(NON_FINITE_EMBEDDING, s.uid, s.key, "a teacher gave NaN/inf", opts.max_listed_per_reason)
                continue
            self.errors.add(image_emb[i].reshape(J, K * D), img_enc.decoded, K)
            self.errors.add(text_emb[i], txt_enc.decoded, K)
            syn = captions[i][primary]
            sample = Sample(
                uid=s.uid, image=s.stored_image, width=s.width, height=s.height,
                orig_width=s.width, orig_height=s.height, caption=s.caption,
                caption_tokens=self.tokenizer.tokenize(s.caption), syn_captions=syn,
                syn_tokens=[self.tokenizer.tokenize(c) for c in syn], aug=s.aug,
                image_emb=img_enc.values, text_emb=txt_enc.values, sha256=s.sha256, flags=s.flags,
                image_emb_scale=img_enc.scales, text_emb_scale=txt_enc.scales,
            )
            self.pending.append(sample)
            itemsize = 1 if opts.embedding_dtype == "int8" else 2
            self.pending_bytes += len(s.stored_image) + (J + 1 + dims.S) * K * D * itemsize + 40 * J + 512
            self.report.samples_written += 1
            self.report.augmented_images += J
            kind = self.report.image_kinds
            kind[s.image_kind] = kind.get(s.image_kind, 0) + 1
            if self.tar is not None:
                extra_sets = {}
                for e, tag in enumerate(extra):
                    enc = encode(extra_emb[i, e * dims.S : (e + 1) * dims.S], opts.embedding_dtype, K)
                    extra_sets[f"syn_text_{tag}"] = enc.decoded
                syn_sets = [("syn_text", syn)] + [(f"syn_text_{tag}", captions[i][tag]) for tag in extra]
                self.tar.add(s, syn_sets, img_enc.decoded, txt_enc.decoded, extra_sets)
            if self.pending_bytes >= opts.target_shard_bytes:
                self._flush()

    def _flush(self) -> None:
        from mobileclip_fastload.convert.store_io import write_part

        if not self.pending:
            return
        path = os.path.join(self.task.output_dir, output_name(self.task.task_id, self.part))
        info = write_part(path, self.pending, self.opts)
        self.report.outputs.append(info)
        self.report.bytes_out += info["file_bytes"]
        self.part += 1
        self.pending, self.pending_bytes = [], 0

    def close(self) -> None:
        self.token_pool.shutdown()
        self._flush()
        self.report.cosine_error = self.errors.as_dict()
        if self.tar is not None:
            self.tar.close()
            self.report.datacompdr_tar = self.tar.path
            self.files[self.tar.path] = os.path.getsize(self.tar.path)

    def abort(self) -> None:
        self.token_pool.shutdown(cancel_futures=True)
        if self.tar is not None:
            self.tar.abort()
