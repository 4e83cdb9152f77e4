"""Is the stored image the one the DR was computed on, and at what size were its boxes drawn?

DataCompDR's crop boxes are in pixels of the *original* image, identified by the
DR json's sha256. The image we get may be that original, an img2dataset-resized
copy of it (``width``/``height`` vs ``original_width``/``original_height`` in
img2dataset's json, and img2dataset's ``sha256`` of the bytes it downloaded), or
something else. Decision, in order:

1. stored bytes hash to the DR sha256: the original; boxes as they are; flag
   ``SHA256_VERIFIED``.
2. the json records an original size that differs from the stored size: a
   resized copy; boxes are rescaled (flag ``BOXES_RESCALED``). If img2dataset's
   hash of the downloaded original is known (separate layout) it must equal the
   DR sha256, else ``sha256_mismatch``. The resize must be proportional (up to
   rounding): img2dataset's center_crop / border modes move content, so boxes
   could not be rescaled (``shape_mismatch``).
3. the image is at its original size (as recorded, or no size recorded) but
   the bytes differ from the DR sha256: ``sha256_mismatch`` when the json
   confirms the size, ``unknown_original_size`` when nothing says whether it
   was resized (the documented joined recipe lets the DR json overwrite
   img2dataset's, losing the sizes).
4. the DR json has no sha256: nothing to check against; kept unverified with
   boxes rescaled when an original size is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from mobileclip_fastload.ingest.skips import (
    SHA256_MISMATCH,
    SHAPE_MISMATCH,
    UNKNOWN_ORIGINAL_SIZE,
    SkipSample,
)

FLAG_BOXES_RESCALED = 1
FLAG_SHA256_VERIFIED = 2


@dataclass(frozen=True)
class ImageOrigin:
    orig_width: int
    orig_height: int
    flags: int
    # How the identity was established: "sha256" (stored bytes), "img2dataset_sha256"
    # (hash of the downloaded original, image resized since), "unverified".
    evidence: str


def _positive_int(v) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int) and v > 0:
        return v
    if isinstance(v, float) and v.is_integer() and v > 0:
        return int(v)
    return None


def recorded_original_size(meta: dict | None) -> tuple[int, int] | None:
    if not meta:
        return None
    w, h = _positive_int(meta.get("original_width")), _positive_int(meta.get("original_height"))
    return (w, h) if w and h else None


def is_proportional(stored: tuple[int, int], orig: tuple[int, int]) -> bool:
    """Same aspect ratio up to each side's rounding to whole pixels."""
    (w, h), (W, H) = stored, orig
    return abs(w / W - h / H) <= 1.0 / W + 1.0 / H + 1e-12


def decide_origin(
    *,
    stored_size: tuple[int, int],
    stored_sha256: bytes,
    dr_sha256: bytes | None,
    image_meta: dict | None,
    downloaded_sha256: bytes | None,
) -> ImageOrigin:
    """See the module docstring. ``image_meta``: the json describing the image (sizes);
    ``downloaded_sha256``: img2dataset's hash of the downloaded original, if known."""
    w, h = stored_size
    if dr_sha256 is not None and stored_sha256 == dr_sha256:
        return ImageOrigin(w, h, FLAG_SHA256_VERIFIED, "sha256")
    orig = recorded_original_size(image_meta)
    if orig is not None and orig != (w, h):
        if not is_proportional((w, h), orig):
            raise SkipSample(
                SHAPE_MISMATCH,
                f"stored {w}x{h} is not a proportional resize of the original {orig[0]}x{orig[1]} "
                "(cropped or padded): boxes cannot be rescaled",
            )
        if dr_sha256 is not None and downloaded_sha256 is not None:
            if downloaded_sha256 != dr_sha256:
                raise SkipSample(
                    SHA256_MISMATCH, "img2dataset's sha256 of the downloaded original differs from the DR sha256"
                )
            return ImageOrigin(orig[0], orig[1], FLAG_BOXES_RESCALED, "img2dataset_sha256")
        return ImageOrigin(orig[0], orig[1], FLAG_BOXES_RESCALED, "unverified")
    if dr_sha256 is None:
        return ImageOrigin(w, h, 0, "unverified")
    if orig is None:
        raise SkipSample(
            UNKNOWN_ORIGINAL_SIZE,
            f"image bytes differ from the DR sha256 and no original_width/original_height is recorded "
            f"(stored {w}x{h}): cannot tell whether it was resized",
        )
    raise SkipSample(SHA256_MISMATCH, f"image at its original size {w}x{h} but its sha256 differs from the DR sha256")
