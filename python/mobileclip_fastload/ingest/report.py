"""The report base of an ingest run: per input shard (``ShardReport``, its status constants) and in total
(``ShardTotals``, ``RunReport``). ``convert`` and ``reinforce`` add their own fields and lines.

Invariant checked by the tests: for every shard, ``samples_in == samples_written + sum(skipped.values())``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from mobileclip_fastload.ingest.precision import CosineError
from mobileclip_fastload.store.atomic import write_text_atomic

CONVERTED = "converted"  # converted in this run
RESUMED = "resumed"  # finished and verified by an earlier run; not redone
UNREADABLE = "unreadable"  # the input (or its image shard) cannot be read at all
FAILED = "failed"  # an unexpected error in the converter itself (a bug): reported, the rest goes on


@dataclass
class ShardReport:
    task_id: str
    input: str
    image_input: str | None = None
    status: str = CONVERTED
    error: str | None = None  # why the whole shard is unreadable / failed
    tar_problem: str | None = None  # the tar broke part-way; samples before the break were used
    image_tar_problem: str | None = None
    samples_in: int = 0
    samples_written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_samples: dict[str, list[dict]] = field(default_factory=dict)  # reason -> [{uid, key, detail}]
    images_without_dr_record: int = 0  # separate layout: image samples no DR sample asked for
    unmatched_image_keys: list[str] = field(default_factory=list)
    rescaled: int = 0  # flag bit 0
    sha256_verified: int = 0  # flag bit 1: stored bytes hash to the DR sha256
    img2dataset_sha256_verified: int = 0  # resized copy of a download whose hash equals the DR sha256
    unverified: int = 0  # nothing to check the image against (no DR sha256, or resized without a download hash)
    boxes_outside_original: int = 0  # aug boxes leaving the original image (replayed with black padding)
    image_kinds: dict[str, int] = field(default_factory=dict)  # "JPEG/RGB" -> count, as Pillow opens them
    cosine_error: dict = field(default_factory=lambda: CosineError().as_dict())
    outputs: list[dict] = field(default_factory=list)  # ShardInfo of every written store shard, as dicts
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # of the process that converted it (wall - cpu = waiting: I/O, other load)

    def skip(self, reason: str, uid: str | None, key: str, detail: str, max_listed: int) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        listed = self.skipped_samples.setdefault(reason, [])
        if len(listed) < max_listed:
            listed.append({"uid": uid, "key": key, "detail": detail[:500]})

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ShardReport:
        return cls(**d)


class ShardTotals:
    """Totals over ``self.shards`` (per-shard reports with counts, skips and cosine errors),
    shared by the convert and the reinforce reports."""

    shards: list

    def _sum(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.shards)

    @property
    def samples_in(self) -> int:
        return self._sum("samples_in")

    @property
    def samples_written(self) -> int:
        return self._sum("samples_written")

    def _sum_counts(self, name: str) -> dict[str, int]:
        """A per-shard ``{name: count}`` field summed over the shards, sorted by name."""
        out: dict[str, int] = {}
        for s in self.shards:
            for key, n in getattr(s, name).items():
                out[key] = out.get(key, 0) + n
        return dict(sorted(out.items()))

    @property
    def skipped(self) -> dict[str, int]:
        return self._sum_counts("skipped")

    @property
    def samples_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def unreadable_shards(self) -> list[ShardReport]:
        return [s for s in self.shards if s.status in (UNREADABLE, FAILED)]

    @property
    def cosine_error(self) -> dict:
        total = CosineError()
        for s in self.shards:
            c = s.cosine_error
            total.merge(CosineError(c["max"], c["mean"] * c["slices"], c["slices"]))
        return total.as_dict()

    def skipped_samples(self, reason: str) -> list[dict]:
        return [e for s in self.shards for e in s.skipped_samples.get(reason, [])]


class RunReport(ShardTotals):
    """What a whole run did: the common part of ``as_dict()`` and of ``summary()``, written once.

    A tool's report is a dataclass with ``output``, ``embedding_dtype``, ``dims``, ``shards``, ``seconds``,
    ``executor``, ``workers`` and ``manifest_written``; it builds ``as_dict()`` with ``_as_dict`` (adding its
    own fields) and ``summary()`` with ``_summary_lines`` (adding its own lines)."""

    output: str
    executor: str
    workers: int
    manifest_written: bool
    seconds: float
    #: the shard count key (and summary word) for the shards finished in this run
    DONE_KEY = "converted"
    #: whether an unreadable shard's entry names its image shard (convert's separate layout)
    LISTS_IMAGE_INPUT = False

    def _done(self) -> list[ShardReport]:
        return [s for s in self.shards if s.status == CONVERTED]

    def _unreadable_entry(self, s: ShardReport) -> dict:
        if self.LISTS_IMAGE_INPUT:
            return {"input": s.input, "image_input": s.image_input, "status": s.status, "error": s.error}
        return {"input": s.input, "status": s.status, "error": s.error}

    def _as_dict(self, head: dict, tail: dict) -> dict:
        """``{"output", **head, executor, workers, manifest_written, shards, samples..., skipped, **tail,
        per_shard}``."""
        return {
            "output": self.output,
            **head,
            "executor": self.executor,
            "workers": self.workers,
            "manifest_written": self.manifest_written,
            "shards": {
                "total": len(self.shards),
                self.DONE_KEY: len(self._done()),
                "resumed": sum(s.status == RESUMED for s in self.shards),
                "unreadable": [self._unreadable_entry(s) for s in self.unreadable_shards],
                "partially_read": [
                    {"input": s.input, "problem": s.tar_problem or s.image_tar_problem}
                    for s in self.shards
                    if s.tar_problem or s.image_tar_problem
                ],
            },
            "samples_in": self.samples_in,
            "samples_written": self.samples_written,
            "samples_skipped": self.samples_skipped,
            "skipped": self.skipped,
            **tail,
            "per_shard": [s.as_dict() for s in self.shards],
        }

    def _summary_lines(self, d: dict, verb: str) -> list[str]:
        """The header, skipped, unreadable and partially read lines of ``summary()``."""
        header = (
            f"{verb} {d['samples_written']}/{d['samples_in']} samples into {self.output} "
            f"({d['shards'][self.DONE_KEY]} shards {self.DONE_KEY}, {d['shards']['resumed']} resumed, "
            f"{len(d['shards']['unreadable'])} unreadable) in {self.seconds:.1f} s"
        )
        lines = [header]
        for reason, n in d["skipped"].items():
            listed = self.skipped_samples(reason)
            shown = ", ".join(str(e["uid"] or e["key"]) for e in listed[:3]) + (" ..." if len(listed) > 3 else "")
            lines.append(f"  skipped {n:>8} {reason}: {shown}")
        lines += [f"  UNREADABLE {u['input']}: {u['error']}" for u in d["shards"]["unreadable"]]
        lines += [f"  partially read {p['input']}: {p['problem']}" for p in d["shards"]["partially_read"]]
        return lines

    def write_json(self, path: str) -> None:
        """The report as JSON at ``path``, atomically and durably."""
        write_text_atomic(path, json.dumps(self.as_dict(), indent=1))
