"""What a conversion did: per input shard, and in total. Nothing is dropped uncounted.

Invariant checked by the tests: for every shard,
``samples_in == samples_written + sum(skipped.values())``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from mobileclip_fastload.ingest.precision import CosineError

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
    def from_dict(cls, d: dict) -> "ShardReport":
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

    @property
    def skipped(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.shards:
            for reason, n in s.skipped.items():
                out[reason] = out.get(reason, 0) + n
        return dict(sorted(out.items()))

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


@dataclass
class ConvertReport(ShardTotals):
    output: str
    layout: str
    embedding_dtype: str
    dims: dict
    syn_key: str
    shards: list[ShardReport]
    seconds: float = 0.0
    workers: int = 1
    executor: str = "process"
    manifest_written: bool = False


    def skipped_uids(self, reason: str) -> list[str]:
        return [e["uid"] or e["key"] for s in self.shards for e in s.skipped_samples.get(reason, [])]

    def _image_kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.shards:
            for kind, n in s.image_kinds.items():
                out[kind] = out.get(kind, 0) + n
        return dict(sorted(out.items()))

    @property
    def bytes_in(self) -> int:
        return self._sum("bytes_in")

    @property
    def bytes_out(self) -> int:
        return self._sum("bytes_out")

    def as_dict(self) -> dict:
        converted = [s for s in self.shards if s.status == CONVERTED]
        secs = max(self.seconds, 1e-9)
        new_in = sum(s.bytes_in for s in converted)
        return {
            "output": self.output,
            "layout": self.layout,
            "embedding_dtype": self.embedding_dtype,
            "dims": self.dims,
            "syn_key": self.syn_key,
            "executor": self.executor,
            "workers": self.workers,
            "manifest_written": self.manifest_written,
            "shards": {
                "total": len(self.shards),
                "converted": len(converted),
                "resumed": sum(s.status == RESUMED for s in self.shards),
                "unreadable": [{"input": s.input, "image_input": s.image_input, "status": s.status, "error": s.error} for s in self.unreadable_shards],
                "partially_read": [{"input": s.input, "problem": s.tar_problem or s.image_tar_problem} for s in self.shards if s.tar_problem or s.image_tar_problem],
            },
            "samples_in": self.samples_in,
            "samples_written": self.samples_written,
            "samples_skipped": self.samples_skipped,
            "skipped": self.skipped,
            "images_without_dr_record": self._sum("images_without_dr_record"),
            "rescaled": self._sum("rescaled"),
            "sha256_verified": self._sum("sha256_verified"),
            "img2dataset_sha256_verified": self._sum("img2dataset_sha256_verified"),
            "unverified": self._sum("unverified"),
            "boxes_outside_original": self._sum("boxes_outside_original"),
            "image_kinds": self._image_kinds(),
            "cosine_error": self.cosine_error,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "store_to_source_ratio": self.bytes_out / self.bytes_in if self.bytes_in else None,
            "seconds": self.seconds,
            "this_run": {
                "samples_per_s": sum(s.samples_in for s in converted) / secs,
                "mb_in_per_s": new_in / 1e6 / secs,
            },
            "per_shard": [s.as_dict() for s in self.shards],
        }

    def summary(self) -> str:
        d = self.as_dict()
        lines = [
            f"converted {d['samples_written']}/{d['samples_in']} samples into {self.output} "
            f"({d['shards']['converted']} shards converted, {d['shards']['resumed']} resumed, "
            f"{len(d['shards']['unreadable'])} unreadable) in {self.seconds:.1f} s",
        ]
        for reason, n in d["skipped"].items():
            uids = self.skipped_uids(reason)
            shown = ", ".join(map(str, uids[:3])) + (" ..." if len(uids) > 3 else "")
            lines.append(f"  skipped {n:>8} {reason}: {shown}")
        for u in d["shards"]["unreadable"]:
            lines.append(f"  UNREADABLE {u['input']}: {u['error']}")
        for p in d["shards"]["partially_read"]:
            lines.append(f"  partially read {p['input']}: {p['problem']}")
        lines.append(
            f"  rescaled boxes: {d['rescaled']}, sha256 verified: {d['sha256_verified']}, "
            f"verified via img2dataset hash: {d['img2dataset_sha256_verified']}, unverified: {d['unverified']}"
        )
        lines.append("  images: " + ", ".join(f"{k} {n}" for k, n in d["image_kinds"].items()))
        ce = d["cosine_error"]
        lines.append(f"  {self.embedding_dtype} cosine error: max {ce['max']:.3g}, mean {ce['mean']:.3g}")
        if d["store_to_source_ratio"] is not None:
            lines.append(f"  store/source size: {d['bytes_out'] / 1e6:.1f} MB / {d['bytes_in'] / 1e6:.1f} MB = {d['store_to_source_ratio']:.3f}")
        return "\n".join(lines)

    def write_json(self, path: str) -> None:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(self.as_dict(), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
