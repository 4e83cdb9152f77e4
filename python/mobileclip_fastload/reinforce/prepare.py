"""One input pair -> a checked sample with its J augmentations drawn and replayed.

This is the CPU half of reinforcement (decode + augment + replay), run in
threads (every heavy step releases the GIL: Pillow's decode, the Rust replay).
Checks, in order: the tar sample is whole, its caption (``txt``) is UTF-8 and not
empty, the image is one Pillow fully decodes (the converter's ``check_image``:
format, decompression bombs), its shorter side is at least ``min_image_size``.
Images the loader's decoder would not reproduce exactly are stored as lossless
PNGs of Pillow's pixels (the converter's ``loader_ready``), and the teachers see
pixels replayed from exactly the bytes that are stored, so the loader later
rebuilds the very images the teachers embedded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from mobileclip_fastload.ingest import members
from mobileclip_fastload.ingest.image_origin import decide_origin
from mobileclip_fastload.ingest.images import check_image, find_image, loader_ready
from mobileclip_fastload.ingest.skips import (
    BAD_JSON,
    DUPLICATE_KEY,
    EMPTY_CAPTION,
    IMAGE_TOO_SMALL,
    MISSING_IMAGE,
    TRUNCATED_SAMPLE,
    UNDECODABLE_IMAGE,
    SkipSample,
)
from mobileclip_fastload.ingest.tar_samples import RawSample
from mobileclip_fastload.reinforce.augmentation import draw_augmentations
from mobileclip_fastload.reinforce.options import ReinforceOptions
from mobileclip_fastload.store import AUG_FLAG_HFLIP, FLAG_IMAGE_TRANSCODED, aug_records

ReplayKey = tuple[int, str]  # (size, interpolation)


@dataclass
class PreparedSample:
    key: str
    uid: str
    caption: str
    url: str
    image: bytes  # the input bytes
    image_ext: str
    stored_image: bytes  # what the store keeps (the input, or a lossless PNG of Pillow's pixels)
    width: int
    height: int
    sha256: bytes  # of the input bytes
    flags: int
    image_kind: str
    entries: list  # DataCompDR param_aug entries (boxes in pixels of this image)
    aug: np.ndarray  # AUG_DTYPE [J]
    caption_inputs: dict  # captioner tag -> its ``prepare(rgb)`` (only the captioners that still caption it)
    pixels: dict[ReplayKey, np.ndarray] = field(default_factory=dict)  # uint8 [J, size, size, 3] per teacher view


def sample_meta(raw: RawSample) -> dict:
    """img2dataset's json (or a table row's uid/url), {} when absent."""
    if "json" not in raw.members:
        return {}
    meta = members.json_member(raw.members, "json")
    if "_problem" in meta:  # a caption-table row that could not be parsed
        raise SkipSample(BAD_JSON, str(meta["_problem"]))
    return meta


def sample_uid(raw: RawSample) -> str:
    """The uid used in the store and for seeding: img2dataset's / the table's uid, else the key."""
    return members.sample_uid(sample_meta(raw), raw.key)


def prepare_sample(raw: RawSample, opts: ReinforceOptions, views: list[ReplayKey], captioners=()) -> PreparedSample:
    """``captioners``: those that caption this sample (their ``prepare`` runs here, on the replay thread)."""
    from mobileclip_fastload import _core

    if raw.truncated:
        raise SkipSample(TRUNCATED_SAMPLE, "the tar broke inside this sample")
    if raw.repeated_exts:
        raise SkipSample(DUPLICATE_KEY, f"member(s) {raw.repeated_exts} repeated within the sample")
    meta = sample_meta(raw)
    uid = members.sample_uid(meta, raw.key)
    if "_image_problem" in meta:
        raise SkipSample(MISSING_IMAGE, str(meta["_image_problem"]))
    caption = members.text_member(raw.members, "txt")
    if not caption.strip():
        raise SkipSample(EMPTY_CAPTION, "the caption is empty")
    found = find_image(raw.members)
    if found is None:
        raise SkipSample(MISSING_IMAGE, "no jpg/jpeg/png/webp member")
    ext, data = found
    checked = check_image(data, formats=opts.image_formats, max_pixels=opts.max_image_pixels)
    if min(checked.width, checked.height) < opts.min_image_size:
        raise SkipSample(IMAGE_TOO_SMALL, f"{checked.width}x{checked.height} < {opts.min_image_size} px")
    stored, transcoded = loader_ready(data, checked)
    # The boxes are drawn on this very image, which is also its "original": the sha256 is
    # that of the input bytes (so a DataCompDR export verifies against them when converted).
    origin = decide_origin(
        stored_size=(checked.width, checked.height),
        stored_sha256=checked.sha256,
        dr_sha256=checked.sha256,
        image_meta=None,
        downloaded_sha256=None,
    )
    entries = draw_augmentations(opts.seed, uid, opts.dims.J, checked.width, checked.height, opts.aug_size)
    aug, _ = aug_records(entries, width=checked.width, height=checked.height)
    url = meta.get("url") if isinstance(meta.get("url"), str) else ""
    sample = PreparedSample(
        key=raw.key,
        uid=uid,
        caption=caption,
        url=url,
        image=data,
        image_ext=ext,
        stored_image=stored,
        width=checked.width,
        height=checked.height,
        sha256=checked.sha256,
        flags=origin.flags | (FLAG_IMAGE_TRANSCODED if transcoded else 0),
        image_kind=f"{checked.format}/{checked.mode}" + (" -> PNG" if transcoded else ""),
        entries=entries,
        aug=aug,
        caption_inputs={c.tag: c.prepare(checked.rgb) for c in captioners},
    )
    # the stored records themselves (the loader replays exactly these), as Python values once per sample
    rec = {
        name: aug[name].tolist()
        for name in ("top", "left", "height", "width", "op0", "op1", "m0", "m1", "n_ops", "flags")
    }
    replays = [
        (
            top,
            left,
            height,
            width,
            [(rec["op0"][j], rec["m0"][j]), (rec["op1"][j], rec["m1"][j])][:n_ops],
            bool(flags & AUG_FLAG_HFLIP),
        )
        for j, (top, left, height, width, n_ops, flags) in enumerate(
            zip(rec["top"], rec["left"], rec["height"], rec["width"], rec["n_ops"], rec["flags"])
        )
    ]
    for size, interpolation in views:
        try:  # one decode (of the union of the boxes' regions) for all J entries
            out = _core.replay_augmentations(stored, replays, size, interpolation)
        except _core.FastloadError as e:  # the loader could not replay it either: not a usable sample
            raise SkipSample(UNDECODABLE_IMAGE, f"the loader's replay fails: {e}") from None
        sample.pixels[(size, interpolation)] = out
    return sample


def param_aug_json(entries: list) -> bytes:
    return json.dumps({"param_aug": entries}).encode("utf-8")
