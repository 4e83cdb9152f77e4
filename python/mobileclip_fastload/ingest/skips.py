"""Why a sample is not written: one exception type and the closed set of reasons."""

from __future__ import annotations

MISSING_IMAGE = "missing_image"  # no image member (joined) / no image with that uid (separate)
UNDECODABLE_IMAGE = "undecodable_image"  # Pillow cannot identify or fully decode it
UNSUPPORTED_IMAGE_FORMAT = "unsupported_image_format"  # decodable, but not a format the store accepts
DECOMPRESSION_BOMB = "decompression_bomb"  # header claims more pixels than allowed
MISSING_FIELD = "missing_field"  # a required member or JSON key is absent
BAD_JSON = "bad_json"  # malformed JSON, or JSON of the wrong shape/type
BAD_TEXT = "bad_text"  # a text member that is not UTF-8
BAD_EMBEDDING_FILE = "bad_embedding_file"  # npz / pth.gz that cannot be read safely
SHAPE_MISMATCH = "shape_mismatch"  # embeddings / captions / augmentations disagree with the store dims
NON_FINITE_EMBEDDING = "non_finite_embedding"  # NaN or inf in an embedding
BAD_AUGMENTATION = "bad_augmentation"  # a param_aug entry that is not [[i,j,h,w],[[op,m],...]] or null
SHA256_MISMATCH = "sha256_mismatch"  # the image is not the one the DR was computed on
UNKNOWN_ORIGINAL_SIZE = "unknown_original_size"  # resized image without original_width/height: boxes cannot be rescaled
DUPLICATE_KEY = "duplicate_key"  # key or uid seen before in this shard, or a member repeated
TRUNCATED_SAMPLE = "truncated_sample"  # the tar ended (or broke) inside this sample
EMPTY_CAPTION = "empty_caption"  # reinforce: the real caption is empty or only whitespace
IMAGE_TOO_SMALL = "image_too_small"  # reinforce: a side is below the minimum image size

ALL_REASONS = (
    MISSING_IMAGE,
    UNDECODABLE_IMAGE,
    UNSUPPORTED_IMAGE_FORMAT,
    DECOMPRESSION_BOMB,
    MISSING_FIELD,
    BAD_JSON,
    BAD_TEXT,
    BAD_EMBEDDING_FILE,
    SHAPE_MISMATCH,
    NON_FINITE_EMBEDDING,
    BAD_AUGMENTATION,
    SHA256_MISMATCH,
    UNKNOWN_ORIGINAL_SIZE,
    DUPLICATE_KEY,
    TRUNCATED_SAMPLE,
    EMPTY_CAPTION,
    IMAGE_TOO_SMALL,
)


class SkipSample(Exception):
    """Raised while building one sample; the shard task records it and goes on."""

    def __init__(self, reason: str, detail: str):
        assert reason in ALL_REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
