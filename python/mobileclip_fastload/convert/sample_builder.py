"""One DataCompDR sample (its tar members) -> one store ``Sample``, or a ``SkipSample``.

Cheap checks run first (json, captions, augmentation entries, embeddings) so a
bad sample costs no image decode; the image is checked last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mobileclip_fastload.convert import fields
from mobileclip_fastload.convert.embeddings import load_embeddings, select_embeddings
from mobileclip_fastload.convert.options import ConvertOptions
from mobileclip_fastload.ingest.image_origin import decide_origin
from mobileclip_fastload.ingest.images import check_image, find_image, loader_ready
from mobileclip_fastload.ingest.precision import CosineError, encode
from mobileclip_fastload.ingest.skips import (
    BAD_AUGMENTATION,
    MISSING_IMAGE,
    NON_FINITE_EMBEDDING,
    SHAPE_MISMATCH,
    SkipSample,
)
from mobileclip_fastload.store import FLAG_IMAGE_TRANSCODED
from mobileclip_fastload.tokenizer import ClipTokenizer


@dataclass
class ImagePart:
    """Where the image, real caption and image metadata of a sample come from."""

    members: dict[str, bytes]  # holds the image and ``txt``
    meta: dict | None  # json with width/height/original_width/original_height, if any
    downloaded_sha256: bytes | None  # img2dataset's hash of the downloaded original (separate layout)


@dataclass
class BuiltSample:
    sample: object  # mobileclip_fastload.store.Sample
    evidence: str  # ImageOrigin.evidence
    boxes_outside: int  # entries whose box leaves the original image (replayed with black padding)
    image_kind: str  # "FORMAT/MODE" as Pillow opens it
    error: CosineError  # what the store dtype did to this sample's embeddings
    approx_bytes: int  # what the sample adds to a shard, roughly


def build_sample(
    key: str,
    members: dict[str, bytes],
    image_lookup: Callable[[str, str], ImagePart | None] | None,
    opts: ConvertOptions,
    tokenizer: ClipTokenizer,
) -> BuiltSample:
    from mobileclip_fastload.convert.aug_records import build_aug_records
    from mobileclip_fastload.store import Sample

    dims = opts.dims
    dr_json = fields.json_member(members, "json")
    uid = fields.sample_uid(dr_json, key)
    dr_sha = fields.dr_sha256(dr_json)

    entries = fields.param_aug(fields.json_member(members, "paug.json"))
    if len(entries) < dims.J or (len(entries) != dims.J and not opts.truncate_augmentations):
        raise SkipSample(SHAPE_MISMATCH, f"param_aug has {len(entries)} entries, expected {dims.J}")
    entries = entries[: dims.J]

    syn = fields.json_member(members, "syn.json")
    # the store's flat list: set 0's captions, then set 1's, ... (every chosen set, each with its S_i)
    syn_caps = [c for key, S in opts.caption_sets for c in fields.syn_captions(syn, key, S)]

    arrays = load_embeddings(members, opts.max_embedding_bytes)
    image_emb, text_emb = select_embeddings(
        arrays, caption_sets=opts.caption_sets, J=dims.J, KD=dims.KD, truncate_j=opts.truncate_augmentations
    )

    if image_lookup is None:  # joined layout: everything is in this sample
        image_part = ImagePart(members, dr_json, None)
    else:
        image_part = image_lookup(uid, key)
        if image_part is None:
            raise SkipSample(MISSING_IMAGE, "no image with this uid/key in the image shard")
    caption = fields.text_member(image_part.members, "txt")
    found = find_image(image_part.members)
    if found is None:
        raise SkipSample(MISSING_IMAGE, "no jpg/jpeg/png/webp member")
    _, image_bytes = found
    checked = check_image(image_bytes, formats=opts.image_formats, max_pixels=opts.max_image_pixels)
    origin = decide_origin(
        stored_size=(checked.width, checked.height),
        stored_sha256=checked.sha256,
        dr_sha256=dr_sha,
        image_meta=image_part.meta,
        downloaded_sha256=image_part.downloaded_sha256,
    )
    boxes_outside = sum(
        1
        for e in entries
        if e is not None
        and (
            e[0][0] < 0
            or e[0][1] < 0
            or e[0][0] + e[0][2] > origin.orig_height
            or e[0][1] + e[0][3] > origin.orig_width
        )
    )
    stored_image, transcoded = loader_ready(image_bytes, checked)
    try:
        aug = build_aug_records(entries, (checked.width, checked.height), (origin.orig_width, origin.orig_height))
    except ValueError as e:  # e.g. a box that no longer fits int32 once scaled up
        raise SkipSample(BAD_AUGMENTATION, str(e)) from None
    caption_tokens = tokenizer.tokenize(caption)
    syn_tokens = [tokenizer.tokenize(c) for c in syn_caps]

    # Encoded here with the store's own conversions, so a shard buffer holds the
    # final 1-2 byte values and the precision report sees exactly what is written.
    try:
        img_enc = encode(image_emb, opts.embedding_dtype, dims.K)
        txt_enc = encode(text_emb, opts.embedding_dtype, dims.K)
    except ValueError as e:  # NaN/inf, or a value that overflows the store dtype
        raise SkipSample(NON_FINITE_EMBEDDING, str(e)) from None
    error = CosineError()
    error.add(image_emb, img_enc.decoded, dims.K)
    error.add(text_emb, txt_enc.decoded, dims.K)
    sample = Sample(
        uid=uid,
        image=stored_image,
        width=checked.width,
        height=checked.height,
        orig_width=origin.orig_width,
        orig_height=origin.orig_height,
        caption=caption,
        caption_tokens=caption_tokens,
        syn_captions=syn_caps,
        syn_tokens=syn_tokens,
        aug=aug,
        image_emb=img_enc.values,
        text_emb=txt_enc.values,
        sha256=dr_sha,
        flags=origin.flags | (FLAG_IMAGE_TRANSCODED if transcoded else 0),
        image_emb_scale=img_enc.scales,
        text_emb_scale=txt_enc.scales,
    )
    approx = (  # the stored sizes: embeddings as encoded, the J records as packed
        len(stored_image)
        + img_enc.values.nbytes
        + txt_enc.values.nbytes
        + len(caption.encode())
        + sum(len(c.encode()) for c in syn_caps)
        + 2 * (caption_tokens.size + sum(t.size for t in syn_tokens))
        + sample.aug.nbytes
        + 64
        + len(uid)
    )
    return BuiltSample(
        sample,
        origin.evidence,
        boxes_outside,
        f"{checked.format}/{checked.mode}" + (" -> PNG" if transcoded else ""),
        error,
        approx,
    )
