"""`write_view`: gather what the page shows for a few samples and the store summary, and write it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from mobileclip_fastload._core import AUG_OP_NAMES, ImageDecodeError, decode_aug_record
from mobileclip_fastload.show import page, plots
from mobileclip_fastload.show.agreement import OUTLIER_Z, agreement_scores, sample_cosines, score_names
from mobileclip_fastload.show.captions import FLAG_MEANINGS, sample_captions
from mobileclip_fastload.show.header import header_facts, teacher_names
from mobileclip_fastload.show.replay import replay
from mobileclip_fastload.show.summary import StoreSummary, draw_subset, summarise
from mobileclip_fastload.store.atomic import write_text_atomic

DEFAULT_SAMPLES = 16
DEFAULT_AUGMENTATIONS = 6
DEFAULT_SUMMARY_SIZE = 1000


@dataclass(frozen=True)
class ViewReport:
    output: str
    samples: list[int]
    summary_size: int
    seconds: float


def choose_samples(store, samples: list[int] | None, n: int, seed: int) -> list[int]:
    """The given indices (negative count from the end; checked), else n at random, in store order."""
    size = len(store)
    if samples is not None:
        out = []
        for i in samples:
            if not -size <= i < size:
                raise IndexError(f"sample {i} out of range: the store at {store.path} has {size} samples")
            out.append(i % size)
        return out
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(size, size=min(n, size), replace=False).tolist())


def describe_aug(j: int, aug: np.ndarray) -> str:
    rec = decode_aug_record(aug[j].tobytes())
    if rec["is_null"]:
        return "null (whole image)"
    ops = ", ".join(f"{AUG_OP_NAMES[op]} {m:+.3g}" for op, m in rec["ops"]) or "no ops"
    flip = ", flip" if rec["hflip"] else ""
    return f"crop top {rec['top']} left {rec['left']} {rec['width']}x{rec['height']}{flip}; {ops}"


def sample_view(store, i: int, augmentations: list[int], summary: StoreSummary, teachers: list[str]) -> dict[str, Any]:
    """Everything the page states about sample i (numbers at full precision)."""
    cos = sample_cosines(store, i)
    scores = agreement_scores(cos)
    z = summary.outliers.z(scores)
    outlying = summary.outliers.outlying(scores)
    return {
        "index": i,
        "uid": store.uid(i),
        "size": list(store.image_size(i)),
        "orig_size": list(store.orig_size(i)),
        "captions": [
            {
                "kind": c.kind,
                "text": c.text,
                "text_row": c.text_row,
                "caption_set": c.caption_set,
                "tokens": len(c.tokens),
                "flags": c.flags,
                "cosines": cos.caption[c.text_row].tolist(),
            }
            for c in sample_captions(store, i)
        ],
        "augmentations": [
            {"j": j, "describe": describe_aug(j, store.aug(i)), "cosines": cos.augmentation[j].tolist()}
            for j in augmentations
        ],
        "scores": scores.tolist(),
        "outliers": [
            {"score": name, "value": float(s), "z": float(zz)}
            for name, s, zz, o in zip(score_names(teachers), scores, z, outlying)
            if o
        ],
    }


def write_view(
    store: Any,
    output: str | os.PathLike[str],
    *,
    samples: list[int] | None = None,
    n: int = DEFAULT_SAMPLES,
    augmentations: int = DEFAULT_AUGMENTATIONS,
    image_size: int | None = None,
    interpolation: str | None = None,
    summary_size: int = DEFAULT_SUMMARY_SIZE,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> ViewReport:
    """Write one self-contained HTML view of `store` (a `Store`, a directory or a URL) to `output`.

    Shows `samples` (or `n` random ones): the stored image, its first `augmentations`
    augmentations replayed as the loader replays them at `image_size` (default: the loader's),
    the captions with their flags and per-teacher cosines; and a header with the manifest and
    plots over a random subset of `summary_size` samples."""
    from mobileclip_fastload import FastReinforcedLoader, Store
    from mobileclip_fastload.loader import TRAINING_INTERPOLATION

    t0 = time.perf_counter()
    if not isinstance(store, Store):
        store = Store(store, cache_dir=cache_dir, storage_options=storage_options)
    if len(store) == 0:
        raise ValueError(f"the store at {store.path} has no samples")
    if augmentations < 0 or n < 1 or summary_size < 1:
        raise ValueError("augmentations must be >= 0, n and summary_size >= 1")
    if image_size is None:
        import inspect

        image_size = inspect.signature(FastReinforcedLoader).parameters["image_size"].default
    interpolation = interpolation or TRAINING_INTERPOLATION
    shown = choose_samples(store, samples, n, seed)
    subset, scope = draw_subset(store, summary_size, seed, shown)
    summary = summarise(store, subset, scope)
    dims = store.dims
    teachers = teacher_names(store.manifest, dims["K"])
    which = list(range(min(augmentations, dims["J"])))

    views, blocks = [], []
    for i in shown:
        view = sample_view(store, i, which, summary, teachers)
        pixels, error = [], None
        try:
            pixels = replay(store, i, which, image_size, interpolation) if which else []
        except ImageDecodeError as e:  # the replay names only the bytes: say which sample
            error = f"{store.shard_path(i)}, sample {i} (uid {store.uid(i)!r}): {e}"
        blocks.append(
            page.sample_html(
                view,
                teachers,
                page.stored_data_uri(store.image(i).tobytes()),
                [page.png_data_uri(p) for p in pixels],
                error,
            )
        )
        views.append(view)

    n_captions = len(summary.real_lengths) + len(summary.syn_lengths)
    html_text = page.render(
        title=f"mobileclip-fastload show: {store.path}",
        facts=header_facts(store, teachers),
        view_settings=f"Showing {len(shown)} sample(s); "
        + (
            f"augmentations 0..{which[-1]} of J={dims['J']} replayed at {image_size}x{image_size} ({interpolation}), "
            "exactly as the loader replays them."
            if which
            else "no augmentations replayed."
        ),
        summary_scope=scope,
        summary_flags=f"{summary.flagged_captions} of {n_captions} captions flagged as degenerate",
        plots=plots.all_plots(summary, teachers),
        flag_legend="; ".join(f"{k}: {v}" for k, v in FLAG_MEANINGS.items()),
        outlier_rule=(
            f"{OUTLIER_Z} or more robust deviations (1.4826 x MAD) from the summary's median; scores: "
            + ", ".join(score_names(teachers))
        ),
        metadata=store.manifest.get("metadata") or {},
        samples=blocks,
        data={
            "store": store.path,
            "dims": dims,
            "embedding_dtype": store.embedding_dtype,
            "teachers": teachers,
            "image_size": image_size,
            "interpolation": interpolation,
            "summary_size": len(subset),
            "outlier_median": summary.outliers.median.tolist(),
            "outlier_scale": summary.outliers.scale.tolist(),
            "samples": views,
        },
    )
    write_text_atomic(output, html_text)
    return ViewReport(os.fspath(output), shown, len(subset), time.perf_counter() - t0)
