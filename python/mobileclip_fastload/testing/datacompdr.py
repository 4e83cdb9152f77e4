"""Small DataCompDR-format WebDataset shards, generated locally.

Used by the converter's tests and by the loader benchmark. Everything that the
real DataCompDR shards hold is produced here with the same shapes and the same
conventions (docs/CONVERT.md lists the layout; docs/FORMAT.md the augmentation entries):

* real photographs (``skimage.data``, or the ones given, e.g. the package's
  embedded ``mobileclip_fastload.sample_photos``), randomly cropped and re-encoded as
  JPEG / PNG / WebP, optionally with img2dataset-style resized copies
  (``keep_ratio_largest``) whose json records the original size;
* a real caption (``txt``) and S synthetic captions (``syn.json``), in the
  legacy single ``syn_text`` key or in the newer tagged ``syn_text_<tag>`` keys;
* J augmentation entries (``paug.json``) drawn exactly as torchvision's
  ``RandomResizedCrop.get_params`` (scale (0.08, 1), ratio (3/4, 4/3)) on the
  original image and ``RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31)``
  on the 224 px teacher crop draw them (signed magnitudes, op indices in
  torchvision order), with optional ``null`` entries;
* random teacher embeddings with every D-slice L2-normalised, stored as
  ``npz`` (stored or deflated, float32) or ``pth.gz`` (gzip of a torch-saved
  dict of bfloat16 tensors);
* the DR ``json`` (uid, sha256 of the original image bytes).

Two layouts: *joined* (one tar per shard with everything) and *separate* (DR
tars without images or captions + img2dataset image tars, keyed differently and
joined by uid).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mobileclip_fastload.reinforce.augmentation import DEFAULT_AUG_SIZE as TEACHER_CROP_SIZE
from mobileclip_fastload.store import Dims

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "camera")
IMAGE_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}

_WORDS = (
    "a photo of the small large red blue green dog cat bird car street city beach mountain "
    "sunset river old new wooden table with on in at near under two three people man woman "
    "child running sitting standing building bridge flower garden night morning close up view"
).split()
_UNICODE_WORDS = ("café", "naïve", "Straße", "日本", "東京タワー", "über", "niño", "😀", "—", "&amp;", "İstanbul")

#: Reinforcement sizes of generated data: J augmentations, S synthetic captions, K teachers of D dims each.
DEFAULT_DIMS = Dims(J=4, S=3, K=2, D=16)


@dataclass
class DRSample:
    """One generated sample, with everything needed to check a conversion."""

    key: str  # tar key in the DR (and joined) shard
    image_key: str  # tar key in the img2dataset shard (separate layout)
    uid: str
    url: str
    caption: str
    syn_captions: dict[str, list[str]]  # syn.json content, e.g. {"syn_text": [...]}
    param_aug: list  # J upstream entries (original pixel space); None = null entry
    image_emb: np.ndarray  # float32 [J, K*D]
    text_emb: np.ndarray  # float32 [1+S, K*D]: real caption, then the primary syn key
    syn_embs: dict[str, np.ndarray]  # tagged layout: "<key>_emb" -> [S, K*D] for every syn key
    original_image: bytes
    original_format: str
    orig_width: int
    orig_height: int
    stored_image: bytes  # what the image tar holds (== original unless resized)
    stored_width: int
    stored_height: int
    sha256_hex: str  # of the original bytes (the DR json field)
    tagged: bool = False  # newer syn_text_<tag> layout

    @property
    def resized(self) -> bool:
        return (self.stored_width, self.stored_height) != (self.orig_width, self.orig_height)

    def syn_for(self, syn_key: str) -> tuple[list[str], np.ndarray]:
        """Captions and [S, K*D] embeddings of one synthetic-caption key."""
        caps = self.syn_captions[syn_key]
        if self.tagged:
            return caps, self.syn_embs[syn_key + "_emb"]
        return caps, self.text_emb[1:]


@dataclass
class GeneratedDataset:
    dr_shards: list[str]
    image_shards: list[str]  # separate layout only
    samples: list[DRSample]  # every sample, in shard order
    shard_samples: list[list[DRSample]] = field(default_factory=list)

    def by_uid(self) -> dict[str, DRSample]:
        return {s.uid: s for s in self.samples}


# --------------------------------------------------------------------------- drawing
def draw_param_aug_entries(orig_width: int, orig_height: int, count: int, seed: int) -> list:
    """``count`` upstream ``param_aug`` entries, drawn one after the other from one torch
    generator seeded once, exactly as torchvision draws them (the shared generator of
    ``mobileclip_fastload.reinforce.augmentation``).

    RandomResizedCrop.get_params runs on the original image; RandAugment runs on
    the 224x224 teacher crop, so translate magnitudes use image_size (224, 224).
    """
    from mobileclip_fastload.reinforce.augmentation import draw_entry, torch_generator

    g = torch_generator(seed)
    return [draw_entry(g, orig_width, orig_height, TEACHER_CROP_SIZE) for _ in range(count)]


def normalised_embeddings(rng: np.random.Generator, rows: int, K: int, D: int) -> np.ndarray:
    """Random float32 [rows, K*D] with every D-slice L2-normalised (one per teacher)."""
    x = rng.standard_normal((rows, K, D)).astype(np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x.reshape(rows, K * D)


def bfloat16_round(x: np.ndarray) -> np.ndarray:
    """float32 -> nearest bfloat16 (ties to even) -> float32, as torch's ``.to(bfloat16)`` rounds."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def _caption(rng: np.random.Generator, long: bool = False) -> str:
    n = int(rng.integers(60, 90)) if long else int(rng.integers(3, 14))
    words = [str(rng.choice(_WORDS)) for _ in range(n)]
    if rng.random() < 0.3:
        words.insert(int(rng.integers(0, len(words))), str(rng.choice(_UNICODE_WORDS)))
    if rng.random() < 0.2:
        words.append(str(int(rng.integers(0, 10_000))))
    text = " ".join(words)
    return text[0].upper() + text[1:] if rng.random() < 0.5 else text


_photo_cache: dict[str, np.ndarray] = {}


def _photo(name: str) -> np.ndarray:
    if name not in _photo_cache:
        import skimage.data

        _photo_cache[name] = np.ascontiguousarray(getattr(skimage.data, name)())
    return _photo_cache[name]


def _encode(pixels: np.ndarray, fmt: str, rng: np.random.Generator) -> bytes:
    from PIL import Image

    img = Image.fromarray(pixels)
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=int(rng.integers(70, 96)))
    elif fmt == "WEBP":
        img.save(buf, format="WEBP", quality=80)
    else:
        img.save(buf, format=fmt)
    return buf.getvalue()


def img2dataset_resize(image: bytes, max_side: int) -> tuple[bytes, int, int]:
    """A ``keep_ratio_largest`` resize (largest side -> ``max_side``), re-encoded as JPEG q95."""
    from PIL import Image

    with Image.open(io.BytesIO(image)) as img:
        img = img.convert("RGB")
        scale = max_side / max(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        small = img.resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=95)
    return buf.getvalue(), size[0], size[1]


def make_samples(
    n: int,
    *,
    dims: Dims = DEFAULT_DIMS,
    seed: int = 0,
    start_index: int = 0,
    image_size: tuple[int, int] = (40, 120),
    formats: Sequence[str] = ("JPEG", "JPEG", "PNG", "WEBP"),
    resized_fraction: float = 0.0,
    resize_to: int = 32,
    null_aug_fraction: float = 0.0,
    long_caption_fraction: float = 0.1,
    syn_tags: Sequence[str] | None = None,
    syn_sizes: Sequence[int] | None = None,
    photos: Sequence[np.ndarray] | None = None,
) -> list[DRSample]:
    """Draw ``n`` samples. ``syn_tags`` switches to the tagged ``syn_text_<tag>`` layout
    (DFNDR's: ``text_emb`` holds the real caption only, each set its own ``<key>_emb``);
    ``syn_sizes`` gives each tag's number of captions (default ``dims.S`` each).
    ``photos``: the pixels samples are cropped from (default: scikit-image's ``PHOTOS``).

    ``image_size`` bounds the random crop sides of the original photographs;
    ``resized_fraction`` of the samples get an img2dataset-style copy whose
    largest side is ``resize_to`` (only when that shrinks the image).
    """
    rng = np.random.default_rng([seed, start_index])  # shards of one dataset differ
    out: list[DRSample] = []
    for n_i in range(n):
        index = start_index + n_i
        pick = int(rng.integers(0, len(PHOTOS) if photos is None else len(photos)))
        photo = _photo(PHOTOS[pick]) if photos is None else photos[pick]
        ph, pw = photo.shape[:2]
        h = int(rng.integers(image_size[0], min(image_size[1], ph) + 1))
        w = int(rng.integers(image_size[0], min(image_size[1], pw) + 1))
        top, left = int(rng.integers(0, ph - h + 1)), int(rng.integers(0, pw - w + 1))
        fmt = str(formats[int(rng.integers(0, len(formats)))])
        original = _encode(photo[top : top + h, left : left + w], fmt, rng)
        stored, sw, sh = original, w, h
        if rng.random() < resized_fraction and max(w, h) > resize_to:
            stored, sw, sh = img2dataset_resize(original, resize_to)

        uid = hashlib.md5(f"{seed}-{index}".encode()).hexdigest()
        drawn = draw_param_aug_entries(w, h, dims.J, seed=seed * 1_000_003 + index)
        param_aug = [None if rng.random() < null_aug_fraction else e for e in drawn]
        caption = _caption(rng, long=rng.random() < long_caption_fraction)
        image_emb = normalised_embeddings(rng, dims.J, dims.K, dims.D)
        real_emb = normalised_embeddings(rng, 1, dims.K, dims.D)
        if syn_tags:
            keys = [f"syn_text_{t}" for t in syn_tags]
            sizes = dict(zip(keys, syn_sizes or [dims.S] * len(keys)))
            syn_captions = {k: [_caption(rng) for _ in range(sizes[k])] for k in keys}
            syn_embs = {k + "_emb": normalised_embeddings(rng, sizes[k], dims.K, dims.D) for k in keys}
            text_emb = np.concatenate([real_emb, syn_embs[keys[0] + "_emb"]])
        else:
            syn_captions = {
                "syn_text": [_caption(rng, long=rng.random() < long_caption_fraction) for _ in range(dims.S)]
            }
            syn_embs = {}
            text_emb = np.concatenate([real_emb, normalised_embeddings(rng, dims.S, dims.K, dims.D)])
        out.append(
            DRSample(
                key=f"{index:09d}",
                image_key=f"{index % 10_000:04d}{index:08d}",
                uid=uid,
                url=f"https://example.com/images/{uid}.{IMAGE_EXTENSIONS[fmt]}",
                caption=caption,
                syn_captions=syn_captions,
                param_aug=param_aug,
                image_emb=image_emb,
                text_emb=text_emb,
                syn_embs=syn_embs,
                original_image=original,
                original_format=fmt,
                orig_width=w,
                orig_height=h,
                stored_image=stored,
                stored_width=sw,
                stored_height=sh,
                sha256_hex=hashlib.sha256(original).hexdigest(),
                tagged=bool(syn_tags),
            )
        )
    return out


# --------------------------------------------------------------------------- encoding members
def embeddings_member(sample: DRSample, emb_format: str) -> tuple[str, bytes]:
    """(extension, bytes) of the embedding file: ``npz`` (stored), ``npz-deflated`` or ``pth.gz``."""
    if sample.tagged:
        arrays = {"image_emb": sample.image_emb, "text_emb": sample.text_emb[:1], **sample.syn_embs}
    else:
        arrays = {"image_emb": sample.image_emb, "text_emb": sample.text_emb}
    if emb_format in ("npz", "npz-deflated"):
        buf = io.BytesIO()
        (np.savez_compressed if emb_format == "npz-deflated" else np.savez)(buf, **arrays)
        return "npz", buf.getvalue()
    if emb_format == "pth.gz":
        import torch

        buf = io.BytesIO()
        torch.save({k: torch.from_numpy(np.ascontiguousarray(v)).to(torch.bfloat16) for k, v in arrays.items()}, buf)
        return "pth.gz", gzip.compress(buf.getvalue(), mtime=0)
    raise ValueError(f"unknown emb_format {emb_format!r}")


def source_embeddings(
    sample: DRSample, emb_format: str, syn_key: str | Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The float32 (image_emb [J, KD], text_emb [1+S, KD]) a converter reads back from the shard:
    the real caption's row, then the rows of each of ``syn_key``'s sets (default: the first set)."""
    keys = _syn_keys(sample, syn_key)
    img, txt = sample.image_emb, np.concatenate([sample.text_emb[:1], *(sample.syn_for(k)[1] for k in keys)])
    if emb_format == "pth.gz":
        img, txt = bfloat16_round(img), bfloat16_round(txt)
    return img, txt


def _syn_keys(sample: DRSample, syn_key: str | Sequence[str] | None) -> list[str]:
    """Full syn.json keys of one name, a tag, or a list of them (default: the sample's first set)."""
    from mobileclip_fastload.store.caption_sets import set_name

    if syn_key is None:
        return [next(iter(sample.syn_captions))]
    return [set_name(k) for k in ([syn_key] if isinstance(syn_key, str) else syn_key)]


def _json(obj) -> bytes:
    return json.dumps(obj).encode("utf-8")


def img2dataset_json(sample: DRSample, status: str = "success") -> dict:
    """The json img2dataset writes next to a downloaded image (sha256 of the downloaded original)."""
    return {
        "url": sample.url,
        "caption": sample.caption,
        "key": sample.image_key,
        "status": status,
        "error_message": None,
        "width": sample.stored_width,
        "height": sample.stored_height,
        "original_width": sample.orig_width,
        "original_height": sample.orig_height,
        "exif": None,
        "sha256": sample.sha256_hex,
        "uid": sample.uid,
    }


def dr_members(
    sample: DRSample,
    *,
    emb_format: str = "npz",
    paug_as_string: bool = False,
) -> list[tuple[str, bytes]]:
    """The DataCompDR part of a sample: url.txt, syn.json, paug.json, npz|pth.gz, json."""
    param_aug = json.dumps(sample.param_aug) if paug_as_string else sample.param_aug
    ext, emb = embeddings_member(sample, emb_format)
    return [
        ("url.txt", sample.url.encode("utf-8")),
        ("syn.json", _json(sample.syn_captions)),
        ("paug.json", _json({"param_aug": param_aug})),
        (ext, emb),
        ("json", _json({"uid": sample.uid, "sha256": sample.sha256_hex})),
    ]


def image_members(sample: DRSample) -> list[tuple[str, bytes]]:
    """The img2dataset part: image, txt (real caption), json."""
    fmt = "JPEG" if sample.resized else sample.original_format
    return [
        (IMAGE_EXTENSIONS[fmt], sample.stored_image),
        ("txt", sample.caption.encode("utf-8")),
        ("json", _json(img2dataset_json(sample))),
    ]


def joined_members(
    sample: DRSample,
    *,
    emb_format: str = "npz",
    paug_as_string: bool = False,
    json_mode: str = "dr",
) -> list[tuple[str, bytes]]:
    """Both parts in one sample. ``json_mode``: ``"dr"`` = the DR json overwrote img2dataset's
    (the documented extract-and-retar recipe), ``"merged"`` = img2dataset json updated with the DR one."""
    img = dict(image_members(sample))
    dr = dict(dr_members(sample, emb_format=emb_format, paug_as_string=paug_as_string))
    if json_mode == "merged":
        merged = img2dataset_json(sample)
        merged.update(json.loads(dr["json"]))
        dr["json"] = _json(merged)
    elif json_mode != "dr":
        raise ValueError(f"unknown json_mode {json_mode!r}")
    image_ext = next(e for e in img if e in ("jpg", "png", "webp"))
    members = [(image_ext, img[image_ext]), ("txt", img["txt"])]
    members += list(dr.items())
    return members


# --------------------------------------------------------------------------- tars
def write_tar(path: str | os.PathLike, samples: Iterable[tuple[str, Sequence[tuple[str, bytes]]]]) -> str:
    """Write ``(key, [(ext, bytes), ...])`` samples as a WebDataset tar (members ``key.ext``)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for key, members in samples:
            for ext, data in members:
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                info.mtime = 0
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
    return path


def make_dataset(
    out_dir: str | os.PathLike,
    *,
    num_shards: int = 2,
    samples_per_shard: int = 8,
    layout: str = "joined",
    emb_format: str = "npz",
    paug_as_string: bool = False,
    json_mode: str = "dr",
    missing_image_fraction: float = 0.0,
    shuffle_images: bool = True,
    seed: int = 0,
    **sample_kwargs,
) -> GeneratedDataset:
    """Write a small dataset: ``{out_dir}/dr/{i:08d}.tar`` (+ ``{out_dir}/images/{i:08d}.tar``).

    In the separate layout, image tars hold their samples in a shuffled order
    under img2dataset keys, and ``missing_image_fraction`` of the samples have
    no image (as when a URL no longer downloads).
    """
    out_dir = os.fspath(out_dir)
    rng = np.random.default_rng(seed + 7)
    dr_paths, image_paths, all_samples, per_shard = [], [], [], []
    for s in range(num_shards):
        samples = make_samples(samples_per_shard, seed=seed, start_index=s * samples_per_shard, **sample_kwargs)
        per_shard.append(samples)
        all_samples += samples
        dr_path = os.path.join(out_dir, "dr", f"{s:08d}.tar")
        if layout == "joined":
            write_tar(
                dr_path,
                [
                    (
                        x.key,
                        joined_members(x, emb_format=emb_format, paug_as_string=paug_as_string, json_mode=json_mode),
                    )
                    for x in samples
                ],
            )
        elif layout == "separate":
            write_tar(
                dr_path, [(x.key, dr_members(x, emb_format=emb_format, paug_as_string=paug_as_string)) for x in samples]
            )
            present = [x for x in samples if rng.random() >= missing_image_fraction]
            if shuffle_images:
                present = [present[i] for i in rng.permutation(len(present))]
            image_path = os.path.join(out_dir, "images", f"{s:08d}.tar")
            write_tar(image_path, [(x.image_key, image_members(x)) for x in present])
            image_paths.append(image_path)
        else:
            raise ValueError(f"unknown layout {layout!r}")
        dr_paths.append(dr_path)
    return GeneratedDataset(dr_paths, image_paths, all_samples, per_shard)


# --------------------------------------------------------------------------- bad input
def decompression_bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A ~100-byte PNG whose header claims ``width x height`` pixels."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- checking a converted store
def expected_box(
    box: Sequence[int], orig_size: tuple[int, int], stored_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """A (top, left, height, width) box in original pixels mapped to stored pixels, as the
    store documents it: each *edge* scaled by stored/original and rounded half up, size >= 1."""
    (ow, oh), (w, h) = orig_size, stored_size
    top, left, height, width = box
    t, b = _half_up(top * h, oh), _half_up((top + height) * h, oh)
    lf, r = _half_up(left * w, ow), _half_up((left + width) * w, ow)
    return t, lf, max(1, b - t), max(1, r - lf)


def _half_up(num: int, den: int) -> int:
    """floor(num / den + 1/2) in exact integer arithmetic."""
    q, r = divmod(num, den)
    return q + (2 * r >= den)


def open_store(path: str):
    try:
        from mobileclip_fastload.store import Store
    except ImportError:
        from mobileclip_fastload._core import Store
    return Store(path)


def assert_store_matches(
    store_dir: str,
    samples: Sequence[DRSample],
    *,
    emb_format: str,
    embedding_dtype: str,
    syn_key: str | Sequence[str] | None = None,
    max_augmentations: int | None = None,
    tokenizer=None,
) -> None:
    """Every stored field of every given sample equals what the source shards hold.

    ``syn_key``: the caption set(s) the store holds, in storage order (default: the first set).

    ``tokenizer``: a callable ``text -> list[int]`` giving the expected token ids
    (unpadded, SOT/EOT included), e.g. open_clip's; default: the package's own.
    """
    if tokenizer is None:
        from mobileclip_fastload.tokenizer import tokenize

        tokenizer = lambda t: tokenize(t).tolist()  # noqa: E731
    store = open_store(store_dir)
    where = {store[i].uid: i for i in range(len(store))}
    for src in samples:
        assert src.uid in where, f"{src.uid} missing from the store"
        got = store[where[src.uid]]
        ctx = f"uid {src.uid}"
        if got.flags & 4:  # transcoded: must decode (in the loader) to Pillow's pixels of the source
            from PIL import Image

            from mobileclip_fastload._core import decode_rgb

            want = np.asarray(Image.open(io.BytesIO(src.stored_image)).convert("RGB"))
            assert np.array_equal(decode_rgb(bytes(got.image)), want), ctx
        else:
            assert bytes(got.image) == src.stored_image, ctx
        assert (got.width, got.height) == (src.stored_width, src.stored_height), ctx
        assert (got.orig_width, got.orig_height) == (src.orig_width, src.orig_height), ctx
        assert got.flags & ~4 == (1 if src.resized else 2), (ctx, got.flags)
        assert got.sha256 == bytes.fromhex(src.sha256_hex), ctx
        keys = _syn_keys(src, syn_key)
        caps = [c for k in keys for c in src.syn_for(k)[0]]
        assert got.caption == src.caption, ctx
        assert list(got.syn_captions) == caps, ctx
        assert np.asarray(got.caption_tokens).dtype == np.uint16
        assert np.asarray(got.caption_tokens).tolist() == list(tokenizer(src.caption)), ctx
        for s, cap in enumerate(caps):
            assert np.asarray(got.syn_tokens[s]).tolist() == list(tokenizer(cap)), (ctx, s)
        J = len(src.param_aug) if max_augmentations is None else max_augmentations
        aug = np.asarray(got.aug)
        assert aug.shape == (J,), ctx
        for j, entry in enumerate(src.param_aug[:J]):
            rec = aug[j]
            if entry is None:
                assert (rec["top"], rec["left"], rec["height"], rec["width"]) == (
                    0,
                    0,
                    src.stored_height,
                    src.stored_width,
                ), ctx
                assert rec["flags"] == 1 and rec["n_ops"] == 0, ctx
                continue
            box = tuple(entry[0])
            if src.resized:
                box = expected_box(box, (src.orig_width, src.orig_height), (src.stored_width, src.stored_height))
            assert (int(rec["top"]), int(rec["left"]), int(rec["height"]), int(rec["width"])) == box, (ctx, j)
            assert rec["flags"] == 0 and rec["n_ops"] == len(entry[1]), (ctx, j)
            for k, (op, m) in enumerate(entry[1]):
                assert rec[f"op{k}"] == op and rec[f"m{k}"] == m, (ctx, j, k)
        img_src, txt_src = source_embeddings(src, emb_format, keys)
        img_src = img_src[:J]
        for name, stored, ref, scales in (
            ("image_emb", got.image_emb, img_src, got.image_emb_scale),
            ("text_emb", got.text_emb, txt_src, got.text_emb_scale),
        ):
            stored = np.asarray(stored)
            assert stored.shape == ref.shape, (ctx, name, stored.shape, ref.shape)
            if embedding_dtype == "float16":
                assert np.array_equal(stored, ref.astype(np.float16)), (ctx, name)
            elif embedding_dtype == "bfloat16":
                as_float = (stored.astype(np.uint32) << 16).view(np.float32)
                assert np.array_equal(as_float, bfloat16_round(ref)), (ctx, name)
            else:
                K = np.asarray(scales).shape[1]
                deq = (stored.reshape(len(ref), K, -1).astype(np.float32) * np.asarray(scales)[:, :, None]).reshape(
                    ref.shape
                )
                step = np.repeat(np.asarray(scales), ref.shape[1] // K, axis=1)
                assert np.all(np.abs(deq - ref) <= step / 2 + 1e-7), (ctx, name)
