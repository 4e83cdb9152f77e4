"""Shared fixtures: small synthetic stores. Keep this file small."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# The compiled extension is part of what this suite tests: without it the run fails, it never skips
# (a broken build in CI would otherwise read as skips). Build it in place with scripts/dev-build.
try:
    import mobileclip_fastload._core  # noqa: F401
except ImportError as e:
    raise pytest.UsageError(
        f"the extension mobileclip_fastload._core does not import ({e}); "
        "build it with scripts/dev-build or pip install -e ."
    ) from e

from mobileclip_fastload._core import DEFAULT_WRITE_SCHEMA
from mobileclip_fastload.store import Sample, StoreWriter, aug_records

# The remote-store fixtures (a moto S3 server on 127.0.0.1): importing them here registers them for every test module.
from remote_s3 import local_store, s3, s3_endpoint  # noqa: F401


def synthetic_sample(
    i: int,
    *,
    J: int = 3,
    S: int = 2,
    K: int = 2,
    D: int = 4,
    image: bytes | None = None,
    size: tuple[int, int] = (32, 24),
    seed: int = 0,
) -> Sample:
    """Sample `i`: deterministic random embeddings (unit norm per teacher), varied text and boxes."""
    rng = np.random.default_rng([seed, i])
    w, h = size
    params = [
        None
        if (i + j) % 4 == 0
        else [
            [
                int(rng.integers(0, h)),
                int(rng.integers(0, w)),
                int(rng.integers(1, h + 1)),
                int(rng.integers(1, w + 1)),
            ],
            [[int(rng.integers(0, 14)), float(rng.normal())] for _ in range((i + j) % 3)],
        ]
        for j in range(J)
    ]
    aug, _ = aug_records(params, width=w, height=h)

    def emb(rows: int) -> np.ndarray:
        x = rng.standard_normal((rows, K, D)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=2, keepdims=True)).reshape(rows, K * D)

    return Sample(
        uid=f"{i:08d}",
        image=image if image is not None else rng.integers(0, 256, 50 + i % 13, dtype=np.uint8).tobytes(),
        width=w,
        height=h,
        orig_width=w,
        orig_height=h,
        caption=f"a photo of thing {i}" if i % 5 else "",
        caption_tokens=np.array([49406, *range(i % 7), 49407], dtype=np.uint16),
        syn_captions=[f"synthetic caption {s} of {i}" for s in range(S)],
        syn_tokens=[np.array([49406, s, 49407], dtype=np.uint16) for s in range(S)],
        aug=aug,
        image_emb=emb(J),
        text_emb=emb(1 + S),
        sha256=bytes([i % 256]) * 32 if i % 2 else None,
    )


def tiny_png(i: int, size: tuple[int, int] = (20, 14)) -> tuple[bytes, int, int]:
    """A small decodable PNG (its colour depends on i), as `make_store`'s image_fn wants it."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (i * 20 % 256, 90, 30)).save(out, format="PNG")
    return out.getvalue(), *size


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., Path]:
    """`make_store(n, J=3, S=2, K=2, D=4, embedding_dtype="float16", shard_samples=None, name="store",
    image_fn=None, schema_version=DEFAULT_WRITE_SCHEMA, caption_sets=None)` writes a store of `n` synthetic samples
    and returns its path; `image_fn(i)` may return (encoded bytes, width, height) for real images; `schema_version=1`
    for a test that edits the shard entries of manifest.json; `caption_sets` as `StoreWriter` takes them."""

    def make(
        n: int = 8,
        *,
        J: int = 3,
        S: int = 2,
        K: int = 2,
        D: int = 4,
        embedding_dtype: str = "float16",
        shard_samples: int | None = None,
        name: str = "store",
        image_fn: Callable[[int], tuple[bytes, int, int]] | None = None,
        schema_version: int = DEFAULT_WRITE_SCHEMA,
        caption_sets: list[tuple[str, int]] | None = None,
    ) -> Path:
        path = tmp_path / name
        first = synthetic_sample(0, J=J, S=S, K=K, D=D)
        per_sample = len(first.image) + first.image_emb.size * 2 + first.text_emb.size * 2
        target = per_sample * shard_samples if shard_samples else 256 << 20
        with StoreWriter(
            path,
            J=J,
            S=S,
            K=K,
            D=D,
            embedding_dtype=embedding_dtype,
            target_shard_bytes=target,
            schema_version=schema_version,
            caption_sets=caption_sets,
        ) as w:
            for i in range(n):
                image, size = None, (32, 24)
                if image_fn is not None:
                    image, iw, ih = image_fn(i)
                    size = (iw, ih)
                w.add(synthetic_sample(i, J=J, S=S, K=K, D=D, image=image, size=size))
        return path

    return make


@pytest.fixture(scope="module")
def one_torch_thread():
    """Intra-op threads spin badly on a loaded 2-core machine; one thread is faster and deterministic."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def collect_batches(loader, limit=None) -> list[dict]:
    """The tensors of each batch (cloned: the loader recycles their memory), at most ``limit`` batches."""
    import torch

    out = []
    for i, b in enumerate(loader):
        if limit is not None and i >= limit:
            break
        out.append({k: v.clone() for k, v in vars(b).items() if isinstance(v, torch.Tensor)})
    return out


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A `heavy` test is `slow` too, so the developer loop (`-m "not slow"`, which replaces the default
    `-m 'not heavy'`) leaves both out."""
    for item in items:
        if item.get_closest_marker("heavy"):
            item.add_marker(pytest.mark.slow)
