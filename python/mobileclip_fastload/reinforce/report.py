"""What a reinforcement run did, per input shard and in total; nothing dropped uncounted.

Per shard the ingest core's ``ShardReport`` (skips with uid, key and detail per
reason; the store dtype's cosine error; outputs) plus what reinforcement adds.
Invariant (tested): ``samples_in == samples_written + sum(skipped.values())``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mobileclip_fastload.ingest.report import CONVERTED, FAILED, RESUMED, UNREADABLE, RunReport, ShardReport

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
class ReinforceReport(RunReport):
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

    DONE_KEY = "done"

    def as_dict(self) -> dict:
        done = self._done()
        secs = max(self.seconds, 1e-9)
        head = {"stage": self.stage, "embedding_dtype": self.embedding_dtype, "dims": self.dims}
        return self._as_dict(
            head,
            {
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
            },
        )

    def summary(self) -> str:
        d = self.as_dict()
        lines = self._summary_lines(d, "captioned" if self.stage == "captions" else "reinforced")
        if self.stage != "captions":
            ce = d["cosine_error"]
            lines.append(
                f"  {d['augmented_images']} augmented images embedded; {self.embedding_dtype} cosine error: "
                f"max {ce['max']:.3g}, mean {ce['mean']:.3g}"
            )
        return "\n".join(lines)


def report_path(output: str, stage: str) -> str:
    return os.path.join(output, "reinforce_report.json" if stage == "all" else f"reinforce_{stage}_report.json")
