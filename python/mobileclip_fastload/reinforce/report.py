"""What a reinforcement run did, per input shard and in total; nothing dropped uncounted.

Per shard the converter's ``ShardReport`` (skips with uid, key and detail per
reason; the store dtype's cosine error; outputs) plus what reinforcement adds.
Invariant (tested): ``samples_in == samples_written + sum(skipped.values())``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from mobileclip_fastload.convert.report import CONVERTED, FAILED, RESUMED, UNREADABLE, ShardReport, ShardTotals

__all__ = ["CONVERTED", "FAILED", "RESUMED", "UNREADABLE", "ReinforceReport", "ReinforceShardReport"]


@dataclass
class ReinforceShardReport(ShardReport):
    stage: str = "all"
    augmented_images: int = 0  # J per written sample, replayed and embedded
    captions_generated: int = 0  # generated in this run (not read from an earlier captioning pass)
    captions_from_pass: int = 0  # read from an earlier captioning pass, joined by uid
    datacompdr_tar: str | None = None
    cpu_replay_seconds: float = 0.0  # decode + augment + replay, summed over threads
    teacher_seconds: float = 0.0
    caption_seconds: float = 0.0


@dataclass
class ReinforceReport(ShardTotals):
    output: str
    stage: str
    embedding_dtype: str
    dims: dict
    shards: list[ReinforceShardReport]
    metadata: dict = field(default_factory=dict)
    seconds: float = 0.0
    executor: str = "inline"
    workers: int = 1
    manifest_written: bool = False

    def as_dict(self) -> dict:
        done = [s for s in self.shards if s.status == CONVERTED]
        secs = max(self.seconds, 1e-9)
        return {
            "output": self.output,
            "stage": self.stage,
            "embedding_dtype": self.embedding_dtype,
            "dims": self.dims,
            "executor": self.executor,
            "workers": self.workers,
            "manifest_written": self.manifest_written,
            "shards": {
                "total": len(self.shards),
                "done": len(done),
                "resumed": sum(s.status == RESUMED for s in self.shards),
                "unreadable": [{"input": s.input, "status": s.status, "error": s.error} for s in self.unreadable_shards],
                "partially_read": [{"input": s.input, "problem": s.tar_problem} for s in self.shards if s.tar_problem],
            },
            "samples_in": self.samples_in,
            "samples_written": self.samples_written,
            "samples_skipped": sum(self.skipped.values()),
            "skipped": self.skipped,
            "augmented_images": self._sum("augmented_images"),
            "captions_generated": self._sum("captions_generated"),
            "captions_from_pass": self._sum("captions_from_pass"),
            "cosine_error": self.cosine_error,
            "seconds": self.seconds,
            "this_run": {
                "samples_per_s": sum(s.samples_in for s in done) / secs,
                "augmented_images_per_s": sum(s.augmented_images for s in done) / secs,
                "cpu_replay_seconds": sum(s.cpu_replay_seconds for s in done),
                "teacher_seconds": sum(s.teacher_seconds for s in done),
                "caption_seconds": sum(s.caption_seconds for s in done),
            },
            "metadata": self.metadata,
            "per_shard": [s.as_dict() for s in self.shards],
        }

    def summary(self) -> str:
        d = self.as_dict()
        what = "captioned" if self.stage == "captions" else "reinforced"
        lines = [
            f"{what} {d['samples_written']}/{d['samples_in']} samples into {self.output} "
            f"({d['shards']['done']} shards done, {d['shards']['resumed']} resumed, "
            f"{len(d['shards']['unreadable'])} unreadable) in {self.seconds:.1f} s",
        ]
        for reason, n in d["skipped"].items():
            listed = self.skipped_samples(reason)
            shown = ", ".join(str(e["uid"] or e["key"]) for e in listed[:3]) + (" ..." if len(listed) > 3 else "")
            lines.append(f"  skipped {n:>8} {reason}: {shown}")
        for u in d["shards"]["unreadable"]:
            lines.append(f"  UNREADABLE {u['input']}: {u['error']}")
        for p in d["shards"]["partially_read"]:
            lines.append(f"  partially read {p['input']}: {p['problem']}")
        if self.stage != "captions":
            ce = d["cosine_error"]
            lines.append(f"  {d['augmented_images']} augmented images embedded; {self.embedding_dtype} cosine error: "
                         f"max {ce['max']:.3g}, mean {ce['mean']:.3g}")
        return "\n".join(lines)

    def write_json(self, path: str) -> None:
        from pathlib import Path

        from mobileclip_fastload.store.atomic import write_text_atomic

        write_text_atomic(Path(path), json.dumps(self.as_dict(), indent=1))


def report_path(output: str, stage: str) -> str:
    return os.path.join(output, "reinforce_report.json" if stage == "all" else f"reinforce_{stage}_report.json")
