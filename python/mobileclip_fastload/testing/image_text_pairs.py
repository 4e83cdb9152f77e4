"""Plain image-text pairs as img2dataset writes them (WebDataset tars: image,
``txt``, ``json``), made from real photographs, for reinforcement tests, the
README example and the benchmark. Optional bad samples cover every skip reason
reinforcement reports."""

from __future__ import annotations

import io
import json
import os

import numpy as np
from PIL import Image

from mobileclip_fastload.testing.datacompdr import write_tar
from mobileclip_fastload.testing.synthetic_store import photo_jpeg

#: bad-sample kinds -> the skip reason reinforcement reports for them
BAD_KINDS = {
    "undecodable": "undecodable_image",
    "empty_caption": "empty_caption",
    "too_small": "image_too_small",
    "no_caption": "missing_field",
    "no_image": "missing_image",
    "duplicate_uid": "duplicate_key",
}
_WORDS = "a photo of the small red dog cat on a street beach at night near two people wooden table".split()


def _caption(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(_WORDS, size=int(rng.integers(3, 10))))


def _reencode(jpeg: bytes, fmt: str) -> bytes:
    buf = io.BytesIO()
    with Image.open(io.BytesIO(jpeg)) as im:
        im.convert("RGB").save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buf.getvalue()


def pair_members(
    rng: np.random.Generator, uid: str, *, fmt: str = "JPEG", min_side: int = 48, max_side: int = 160
) -> list[tuple[str, bytes]]:
    jpeg, w, h = photo_jpeg(rng, min_side=min_side, max_side=max_side)
    image, ext = (jpeg, "jpg") if fmt == "JPEG" else (_reencode(jpeg, fmt), fmt.lower())
    meta = {
        "uid": uid,
        "url": f"https://example.com/{uid}.{ext}",
        "caption": None,
        "width": w,
        "height": h,
        "status": "success",
    }
    caption = _caption(rng)
    meta["caption"] = caption
    return [(ext, image), ("txt", caption.encode("utf-8")), ("json", json.dumps(meta).encode("utf-8"))]


def make_pair_shards(
    out_dir: str | os.PathLike,
    *,
    num_shards: int = 2,
    samples_per_shard: int = 8,
    seed: int = 0,
    bad: tuple[str, ...] = (),
    max_side: int = 160,
) -> list[str]:
    """Write ``num_shards`` tars ``{out_dir}/{00000..}.tar``; every 5th image is a PNG and every
    7th a WebP (stored as a lossless PNG by reinforcement). ``bad`` kinds (keys of
    ``BAD_KINDS``) are appended to the first shard, one sample each."""
    rng = np.random.default_rng(seed)
    paths = []
    n = 0
    for shard in range(num_shards):
        samples = []
        for _ in range(samples_per_shard):
            fmt = "WEBP" if n % 7 == 6 else "PNG" if n % 5 == 4 else "JPEG"
            uid = f"{seed:02d}{n:08d}"
            samples.append((f"{n:09d}", pair_members(rng, uid, fmt=fmt, max_side=max_side)))
            n += 1
        if shard == 0:
            for kind in bad:
                if kind not in BAD_KINDS:
                    raise ValueError(f"unknown bad kind {kind!r}; choose from {list(BAD_KINDS)}")
                uid = samples[0][1][2][1] if kind == "duplicate_uid" else None
                members = dict(pair_members(rng, f"bad-{kind}"))
                if kind == "undecodable":
                    members["jpg"] = members["jpg"][:200]
                elif kind == "empty_caption":
                    members["txt"] = b"  \n"
                elif kind == "too_small":
                    members["jpg"], _, _ = photo_jpeg(rng, min_side=6, max_side=8)
                elif kind == "no_caption":
                    del members["txt"]
                elif kind == "no_image":
                    del members["jpg"]
                elif kind == "duplicate_uid":
                    members["json"] = uid
                samples.append((f"bad-{kind}", list(members.items())))
        paths.append(write_tar(os.path.join(os.fspath(out_dir), f"{shard:05d}.tar"), samples))
    return paths
