"""Where a shard task's finished chunks go: the captions file (stage "captions") or the
teachers and then the store parts and the DataCompDR tar (stage "all")."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mobileclip_fastload.ingest.precision import CosineError, encode
from mobileclip_fastload.ingest.skips import NON_FINITE_EMBEDDING
from mobileclip_fastload.ingest.store_io import output_name
from mobileclip_fastload.reinforce.datacompdr_export import DataCompDRTarWriter
from mobileclip_fastload.reinforce.inputs import ReinforceTask
from mobileclip_fastload.reinforce.options import ReinforceOptions
from mobileclip_fastload.reinforce.prepare import PreparedSample
from mobileclip_fastload.reinforce.report import ReinforceShardReport
from mobileclip_fastload.reinforce.resume import captions_path, datacompdr_path


class CaptionSink:
    """Stage "captions": one JSON line per sample, ``{"uid", "captions": {tag: [...]}}``, published at the end."""

    def __init__(self, task: ReinforceTask, report: ReinforceShardReport, files: dict):
        from mobileclip_fastload.store.atomic import temp_name

        self.path = captions_path(task.output_dir, task.task_id)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.tmp = temp_name(Path(self.path))
        self.file = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 -- the sink closes it
        self.report, self.files = report, files

    def add(self, ready: list[PreparedSample], captions: list[dict]) -> None:
        for s, caps in zip(ready, captions):
            self.file.write(json.dumps({"uid": s.uid, "captions": caps}, ensure_ascii=False) + "\n")
        self.report.samples_written += len(ready)

    def close(self) -> None:
        from mobileclip_fastload.store.atomic import publish

        self.file.close()
        publish(self.tmp, self.path)
        self.files[self.path] = os.path.getsize(self.path)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class StoreSink:
    """Stage "all": teachers embed each chunk (this thread: it feeds the device); a writer
    thread turns the previous chunk into store rows (encode, tokens, parts, DataCompDR tar)
    meanwhile. One chunk at a time is being written, in order, so the bytes do not depend
    on timing; the writer only touches report fields this thread does not (its skips are
    handed back and recorded here)."""

    def __init__(self, task, opts: ReinforceOptions, report: ReinforceShardReport, teachers, files: dict):
        from mobileclip_fastload.tokenizer import default_tokenizer

        self.task, self.opts, self.report, self.teachers, self.files = task, opts, report, teachers, files
        # tokenizes captions while the teachers embed images (its own thread: the replay
        # pool's queue already holds the next chunk)
        self.token_pool = ThreadPoolExecutor(1)
        self.writer = ThreadPoolExecutor(1)
        self.writing = None  # the future of the chunk being written
        self.tokenizer = default_tokenizer()
        self.errors = CosineError()
        self.pending: list = []
        self.pending_bytes = 0
        self.part = 0
        self.pinned = opts.device.startswith("cuda")
        self.staging: dict = {}  # replay key -> pinned uint8 buffer
        tar = datacompdr_path(opts, task.task_id)
        self.tar = DataCompDRTarWriter(tar) if tar else None

    def add(self, ready: list[PreparedSample], captions: list[dict]) -> None:
        opts, dims = self.opts, self.opts.dims
        n, J, K, D = len(ready), dims.J, dims.K, dims.D
        primary = opts.captioners[0].tag
        extra = [c.tag for c in opts.captioners[1:]]
        image_emb = np.empty((n, J, K, D), np.float32)
        # The first captioner's rows of every sample, then the other captioners' (the order a store of
        # one captioner has always embedded in, so its teacher batches, and bytes, stay the same).
        text_rows = [[s.caption, *captions[i][primary]] for i, s in enumerate(ready)]
        extra_rows = [[t for tag in extra for t in captions[i][tag]] for i in range(n)]
        texts = [t for rows in text_rows for t in rows] + [t for rows in extra_rows for t in rows]
        text_emb_all = np.empty((len(texts), K, D), np.float32)
        t0 = time.perf_counter()
        tokens = [self.token_pool.submit(teacher.tokenize, texts) for teacher in self.teachers]
        inputs: dict = {}  # ImageView -> model input, shared by the teachers that see the same view
        for k, teacher in enumerate(self.teachers):
            if teacher.view not in inputs:
                pixels = self._staged([s.pixels[teacher.view.replay_key] for s in ready], teacher.view.replay_key)
                inputs = {teacher.view: teacher.to_model_input(pixels)}  # keep one on the device at a time
            image_emb[:, :, k] = teacher.embed_images(None, inputs[teacher.view]).reshape(n, J, D)
        del inputs
        for k, teacher in enumerate(self.teachers):
            text_emb_all[:, k] = teacher.embed_texts(texts, tokens[k].result())
        self.report.teacher_seconds += time.perf_counter() - t0
        S0 = opts.captioners[0].num_captions
        n_main = n * (1 + S0)
        text_emb = text_emb_all[:n_main].reshape(n, 1 + S0, K * D)
        if extra:  # per sample: the real caption's row, then every set's rows in captioner order
            text_emb = np.concatenate([text_emb, text_emb_all[n_main:].reshape(n, dims.S - S0, K * D)], axis=1)
        for s in ready:
            s.pixels = {}  # embedded: free them before the writer gets the chunk
        self._wait_writer()
        self.writing = self.writer.submit(self._write, ready, captions, image_emb, text_emb)

    def _staged(self, parts: list, key) -> object:
        """All J of each image as one [N*J, H, W, 3] batch: on CUDA in a reused pinned buffer (no allocation
        per chunk, and the upload is a real asynchronous DMA), else a numpy concatenation."""
        if not self.pinned:
            return np.concatenate(parts)
        import torch

        rows = sum(len(p) for p in parts)
        buf = self.staging.get(key)
        if buf is None or buf.shape[0] < rows:
            buf = torch.empty((rows, *parts[0].shape[1:]), dtype=torch.uint8, pin_memory=True)
            self.staging[key] = buf
        np.concatenate(parts, out=buf.numpy()[:rows])  # the teachers' sync ends the previous upload first
        return buf[:rows]

    def _wait_writer(self) -> None:
        """Let the previous chunk's write finish (re-raising its error) and record its skips."""
        if self.writing is None:
            return
        future, self.writing = self.writing, None
        for s, detail in future.result():
            self.report.skip(NON_FINITE_EMBEDDING, s.uid, s.key, detail, self.opts.max_listed_per_reason)

    def _write(self, ready, captions, image_emb, text_emb) -> list:
        from mobileclip_fastload.store import Sample

        opts, dims = self.opts, self.opts.dims
        J, K, D = dims.J, dims.K, dims.D
        skipped = []
        for i, s in enumerate(ready):
            try:
                img_enc = encode(image_emb[i].reshape(J, K * D), opts.embedding_dtype, K)
                txt_enc = encode(text_emb[i], opts.embedding_dtype, K)  # per row: a set's rows encode alike alone
            except ValueError:  # NaN/inf, or a value that overflows the store dtype
                skipped.append((s, "a teacher gave NaN/inf"))
                continue
            self.errors.add(image_emb[i].reshape(J, K * D), img_enc.decoded, K)
            self.errors.add(text_emb[i], txt_enc.decoded, K)
            sets = [captions[i][c.tag] for c in opts.captioners]
            syn = [t for caps in sets for t in caps]  # the store's flat list: set 0's captions, then set 1's, ...
            sample = Sample(
                uid=s.uid,
                image=s.stored_image,
                width=s.width,
                height=s.height,
                orig_width=s.width,
                orig_height=s.height,
                caption=s.caption,
                caption_tokens=self.tokenizer.tokenize(s.caption),
                syn_captions=syn,
                syn_tokens=[self.tokenizer.tokenize(c) for c in syn],
                aug=s.aug,
                image_emb=img_enc.values,
                text_emb=txt_enc.values,
                sha256=s.sha256,
                flags=s.flags,
                image_emb_scale=img_enc.scales,
                text_emb_scale=txt_enc.scales,
            )
            self.pending.append(sample)
            self.pending_bytes += (  # the stored sizes: embeddings as encoded, the J records as packed
                len(s.stored_image) + img_enc.values.nbytes + txt_enc.values.nbytes + sample.aug.nbytes + 512
            )
            self.report.samples_written += 1
            self.report.augmented_images += J
            kind = self.report.image_kinds
            kind[s.image_kind] = kind.get(s.image_kind, 0) + 1
            if self.tar is not None:
                self._export(s, sets, img_enc.decoded, txt_enc.decoded)
            if self.pending_bytes >= opts.target_shard_bytes:
                self._flush()
        return skipped

    def _export(self, s: PreparedSample, sets: list[list[str]], image_emb: np.ndarray, text_emb: np.ndarray) -> None:
        """The sample in the DataCompDR tar: ``text_emb`` = the real caption's and set 0's rows, every
        further set in ``syn.json`` and as ``<key>_emb`` (the store's values, set by set)."""
        names = [name for name, _ in self.opts.caption_sets]
        ends = np.cumsum([1] + [len(caps) for caps in sets])
        rows = {name: text_emb[ends[k] : ends[k + 1]] for k, name in enumerate(names)}
        extra_embs = {name: rows[name] for name in names[1:]}
        self.tar.add(s, list(zip(names, sets)), image_emb, text_emb[: ends[1]], extra_embs)

    def _flush(self) -> None:
        from mobileclip_fastload.ingest.store_io import write_part

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
        self._wait_writer()
        self.writer.shutdown()
        self._flush()
        self.report.cosine_error = self.errors.as_dict()
        if self.tar is not None:
            self.tar.close()
            self.report.datacompdr_tar = self.tar.path
            self.files[self.tar.path] = os.path.getsize(self.tar.path)

    def abort(self) -> None:
        self.token_pool.shutdown(cancel_futures=True)
        self.writer.shutdown(wait=True)  # the write in progress ends before its tar is removed
        if self.tar is not None:
            self.tar.abort()
