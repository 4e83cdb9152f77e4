"""What a conversion did: per input shard, and in total. Nothing is dropped uncounted.

The shard report and the common totals are the ingest core's (``mobileclip_fastload.ingest.report``);
this adds what only a conversion counts (verified hashes, rescaled boxes, image kinds, sizes).
"""

from __future__ import annotations

from dataclasses import dataclass

from mobileclip_fastload.ingest.report import (
    CONVERTED,
    FAILED,
    RESUMED,
    UNREADABLE,
    RunReport,
    ShardReport,
    ShardTotals,
)

__all__ = ["CONVERTED", "FAILED", "RESUMED", "UNREADABLE", "ConvertReport", "ShardReport", "ShardTotals"]


@dataclass
class ConvertReport(RunReport):
    output: str
    layout: str
    embedding_dtype: str
    dims: dict
    caption_sets: list  # [[syn.json key, S_i], ...] in storage order
    shards: list[ShardReport]
    seconds: float = 0.0
    workers: int = 1
    executor: str = "process"
    manifest_written: bool = False

    DONE_KEY = "converted"
    LISTS_IMAGE_INPUT = True

    def skipped_uids(self, reason: str) -> list[str]:
        return [e["uid"] or e["key"] for e in self.skipped_samples(reason)]

    @property
    def bytes_in(self) -> int:
        return self._sum("bytes_in")

    @property
    def bytes_out(self) -> int:
        return self._sum("bytes_out")

    def as_dict(self) -> dict:
        converted = self._done()
        secs = max(self.seconds, 1e-9)
        new_in = sum(s.bytes_in for s in converted)
        head = {
            "layout": self.layout,
            "embedding_dtype": self.embedding_dtype,
            "dims": self.dims,
            "caption_sets": self.caption_sets,
        }
        return self._as_dict(
            head,
            {
                "images_without_dr_record": self._sum("images_without_dr_record"),
                "rescaled": self._sum("rescaled"),
                "sha256_verified": self._sum("sha256_verified"),
                "img2dataset_sha256_verified": self._sum("img2dataset_sha256_verified"),
                "unverified": self._sum("unverified"),
                "boxes_outside_original": self._sum("boxes_outside_original"),
                "image_kinds": self._sum_counts("image_kinds"),
                "cosine_error": self.cosine_error,
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
                "store_to_source_ratio": self.bytes_out / self.bytes_in if self.bytes_in else None,
                "seconds": self.seconds,
                "this_run": {
                    "samples_per_s": sum(s.samples_in for s in converted) / secs,
                    "mb_in_per_s": new_in / 1e6 / secs,
                },
            },
        )

    def summary(self) -> str:
        d = self.as_dict()
        lines = self._summary_lines(d, "converted")
        lines.append("  caption sets: " + ", ".join(f"{name} ({S} captions)" for name, S in self.caption_sets))
        lines.append(
            f"  rescaled boxes: {d['rescaled']}, sha256 verified: {d['sha256_verified']}, "
            f"verified via img2dataset hash: {d['img2dataset_sha256_verified']}, unverified: {d['unverified']}"
        )
        lines.append("  images: " + ", ".join(f"{k} {n}" for k, n in d["image_kinds"].items()))
        ce = d["cosine_error"]
        lines.append(f"  {self.embedding_dtype} cosine error: max {ce['max']:.3g}, mean {ce['mean']:.3g}")
        if d["store_to_source_ratio"] is not None:
            lines.append(
                f"  store/source size: {d['bytes_out'] / 1e6:.1f} MB / {d['bytes_in'] / 1e6:.1f} MB = "
                f"{d['store_to_source_ratio']:.3f}"
            )
        return "\n".join(lines)
