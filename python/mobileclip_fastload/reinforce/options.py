"""Everything a reinforcement shard task needs to know, resolved once in the driver
and shipped (pickled) to workers; ``fingerprint`` is what a finished shard's done
record must match to be kept on resume."""

from __future__ import annotations

from dataclasses import dataclass

from mobileclip_fastload.ingest.options import (
    DEFAULT_FORMATS,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_LISTED_PER_REASON,
    DEFAULT_TARGET_SHARD_BYTES,
    Dims,
    check_choice,
    check_shared_options,
)
from mobileclip_fastload.reinforce.augmentation import DEFAULT_AUG_SIZE
from mobileclip_fastload.reinforce.captioners import Captioner
from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec
from mobileclip_fastload.reinforce.teachers import PRECISIONS
from mobileclip_fastload.store.caption_sets import PLAIN_SET_NAME, tagged_set_name

STAGES = ("all", "captions")
DEFAULT_MIN_IMAGE_SIZE = 16
#: augmented images per teacher forward: 16 images at DataCompDR's J = 30; 240 images at DFNDR's J = 2
DEFAULT_BATCH_AUGMENTED_IMAGES = 480


@dataclass(frozen=True)
class ReinforceOptions:
    dims: Dims  # J, S (every captioner's captions together: sum of caption_sets' S_i), K teachers, D each
    seed: int
    teachers: tuple[OpenClipSpec, ...]
    captioners: tuple[Captioner, ...]  # one caption set each, in this order (caption_sets)
    embedding_dtype: str = "float16"
    aug_size: int = DEFAULT_AUG_SIZE  # RandAugment's image size (translate magnitudes in its pixels)
    min_image_size: int = DEFAULT_MIN_IMAGE_SIZE  # shorter side below this: skipped as image_too_small
    target_shard_bytes: int = DEFAULT_TARGET_SHARD_BYTES
    image_formats: tuple[str, ...] = DEFAULT_FORMATS
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    datacompdr_dir: str | None = None  # also write DataCompDR-format tars here
    stage: str = "all"  # "captions": only caption every shard (a separate pass, joined by uid later)
    device: str = "cpu"
    precision: str = "auto"
    batch_augmented_images: int = DEFAULT_BATCH_AUGMENTED_IMAGES  # per teacher forward (a chunk: this // J images)
    num_threads: int = 1  # decode + augment + replay threads per task
    max_listed_per_reason: int = DEFAULT_MAX_LISTED_PER_REASON

    def __post_init__(self):
        check_shared_options(self)
        check_choice("stage", self.stage, STAGES)
        check_choice("precision", self.precision, PRECISIONS)
        if not self.captioners:
            raise ValueError("at least one captioner is needed (the store holds S >= 1 synthetic captions)")
        if len({c.tag for c in self.captioners}) != len(self.captioners):
            raise ValueError(f"captioner tags must differ: {[c.tag for c in self.captioners]}")
        if self.batch_augmented_images < 1 or self.num_threads < 1:
            raise ValueError("batch_augmented_images and num_threads must be positive")

    @property
    def caption_sets(self) -> list[tuple[str, int]]:
        """The store's caption sets, one per captioner: the first as ``syn_text``, the others as
        ``syn_text_<tag>`` (the names the DataCompDR export gives them), each of its ``num_captions``."""
        names = [PLAIN_SET_NAME] + [tagged_set_name(c.tag) for c in self.captioners[1:]]
        return [(name, c.num_captions) for name, c in zip(names, self.captioners)]

    @property
    def images_per_chunk(self) -> int:
        """Images the replay prepares and the teachers embed together: ``batch_augmented_images`` // J
        (at least 1), and at least the largest ``images_per_call`` of a captioner, so that is never cut."""
        calls = [getattr(c, "images_per_call", 1) for c in self.captioners]
        return max(1, self.batch_augmented_images // self.dims.J, *calls)

    def captions_fingerprint(self) -> dict:
        """What determines the captions: the captioners and sampling seed, and where they ran (device
        type, GPU model, resolved precision: CUDA's sampling stream and bf16 numerics depend on them)."""
        from mobileclip_fastload.reinforce.devices import device_fingerprint

        return {
            "seed": self.seed,
            "captioners": [c.fingerprint() for c in self.captioners],
            "caption_device": device_fingerprint(self.device),
            "caption_precision": [c.resolved_precision(self.device) for c in self.captioners],
            "images_per_chunk": self.images_per_chunk,
            "min_image_size": self.min_image_size,
            "image_formats": list(self.image_formats),
            "max_image_pixels": self.max_image_pixels,
        }

    def fingerprint(self) -> dict:
        """What determines a shard's store output (not: num_threads, device index, listing caps)."""
        return {
            **self.captions_fingerprint(),
            "dims": self.dims.as_dict(),
            "teachers": [t.fingerprint() for t in self.teachers],
            "embedding_dtype": self.embedding_dtype,
            "aug_size": self.aug_size,
            "target_shard_bytes": self.target_shard_bytes,
            "datacompdr_dir": self.datacompdr_dir,
            "precision": self.precision,
            "device_type": self.device.split(":")[0],
            "batch_augmented_images": self.batch_augmented_images,
        }
