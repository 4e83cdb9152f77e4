"""One sample of a DR store, as the writer takes it and `Store.sample(i)` returns it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mobileclip_fastload._core import AUG_RECORD_FIELDS, AUG_RECORD_SIZE

#: One augmentation entry: the 40-byte little-endian record defined in rust/src/aug/record.rs,
#: built from the layout `_core` exports (field names, formats, offsets, size).
#: flags: bit 0 = null entry (upstream `null`), bit 1 = horizontal flip; pad is zero.
AUG_DTYPE = np.dtype(
    {
        "names": [name for name, _, _ in AUG_RECORD_FIELDS],
        "formats": [fmt for _, fmt, _ in AUG_RECORD_FIELDS],
        "offsets": [offset for _, _, offset in AUG_RECORD_FIELDS],
        "itemsize": AUG_RECORD_SIZE,
    }
)


@dataclass(eq=False)
class Sample:
    """Everything the store keeps for one image-text pair.

    Writing: embeddings may be float16/float32 (cast to the store dtype; for a
    bfloat16 store uint16 arrays are taken as raw bf16 bits; for an int8 store,
    int8 arrays are taken as already quantized and need the matching scales).
    Reading (`Store.sample`): arrays are read-only views in the store's dtype:
    float16, uint16 bf16 bits, or int8 plus `image_emb_scale` / `text_emb_scale`.
    """

    uid: str
    image: bytes
    #: size of the stored image in pixels
    width: int
    height: int
    #: size of the original image the upstream boxes were drawn on
    orig_width: int
    orig_height: int
    caption: str
    #: uint16 [n <= 77] token ids of the real caption, SOT/EOT included, unpadded
    caption_tokens: np.ndarray
    #: S synthetic captions
    syn_captions: list[str]
    #: S uint16 token arrays
    syn_tokens: list[np.ndarray]
    #: AUG_DTYPE [J], boxes in stored-image pixels (see `aug_records`)
    aug: np.ndarray
    #: [J, K*D]: teacher embeddings of the J augmented images
    image_emb: np.ndarray
    #: [1+S, K*D]: row 0 the real caption, rows 1..S the synthetic captions
    text_emb: np.ndarray
    #: sha256 of the original image bytes (32 bytes), when known
    sha256: bytes | None = None
    #: FLAG_BOXES_RESCALED | FLAG_SHA256_VERIFIED
    flags: int = 0
    #: int8 stores only: float32 [J, K] and [1+S, K], x = q * scale per (row, teacher)
    image_emb_scale: np.ndarray | None = field(default=None)
    text_emb_scale: np.ndarray | None = field(default=None)
