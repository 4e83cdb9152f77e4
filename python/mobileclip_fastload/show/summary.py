"""Store-wide numbers over a random subset: what the header's plots draw and what
the outlier flags compare each shown sample against. Memory: a few numbers per
subset sample; the embeddings are read one sample at a time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobileclip_fastload.show.agreement import OutlierRule, agreement_scores, sample_cosines
from mobileclip_fastload.show.captions import sample_captions


@dataclass
class StoreSummary:
    indices: np.ndarray  # the subset summarised
    scope: str  # where the subset was drawn from, in words
    real_lengths: np.ndarray  # [n] tokens of the real caption (SOT/EOT included)
    syn_lengths: np.ndarray  # [n*S] tokens of the synthetic captions
    real_cosines: np.ndarray  # [n, K] real caption vs image mean, per teacher
    syn_cosines: np.ndarray  # [n*S, K] synthetic captions vs image mean, per teacher
    image_sizes: np.ndarray  # [n, 2] stored (width, height)
    flagged_captions: int  # captions of the subset with a degenerate-caption flag
    outliers: OutlierRule


def is_remote(store) -> bool:
    return "://" in store.path


def shard_ranges(store) -> list[range]:
    """The sample indices of each shard, in store order."""
    ranges, start = [], 0
    for shard in map(store.shard_entry, range(store.num_shards)):
        ranges.append(range(start, start + shard["num_samples"]))
        start += shard["num_samples"]
    return ranges


#: A local store's subset is drawn from at most this many shards: mapping a shard validates its
#: augmentation column, so a subset spread over every shard of a 12M-sample store would read GBs.
SUMMARY_SHARDS = 16


def draw_subset(store, size: int, seed: int, shown: list[int]) -> tuple[np.ndarray, str]:
    """`size` distinct indices at random from the shards holding the shown samples and, locally,
    random other shards up to SUMMARY_SHARDS. A remote store downloads whole shards, so there the
    subset stays in the shards fetched for the shown samples anyway."""
    rng = np.random.default_rng(seed)
    ranges = shard_ranges(store)
    starts = np.array([r.start for r in ranges])
    holding = list(dict.fromkeys(int(np.searchsorted(starts, i, side="right")) - 1 for i in shown))
    if not is_remote(store) and len(holding) < SUMMARY_SHARDS:
        others = np.setdiff1d(np.arange(len(ranges)), holding)
        holding += rng.permutation(others)[: SUMMARY_SHARDS - len(holding)].tolist()
    holding = sorted(holding)
    pool = np.concatenate([np.arange(ranges[s].start, ranges[s].stop) for s in holding])
    chosen = np.sort(rng.choice(pool, size=min(size, len(pool)), replace=False))
    if len(chosen) == len(store):
        return chosen, f"all {len(store)} samples"
    where = (
        "all shards"
        if len(holding) == len(ranges)
        else (
            f"{len(holding)} of {len(ranges)} shards ("
            + (
                "those holding the shown samples"
                if is_remote(store)
                else "those holding the shown samples, then random ones"
            )
            + ")"
        )
    )
    return chosen, f"{len(chosen)} of {len(store)} samples drawn at random from {where}"


def summarise(store, indices: np.ndarray, scope: str) -> StoreSummary:
    real_lengths, syn_lengths, real_cos, syn_cos, sizes, scores = [], [], [], [], [], []
    flagged = 0
    for i in indices.tolist():
        captions = sample_captions(store, i)
        cos = sample_cosines(store, i)
        real_lengths.append(len(captions[0].tokens))
        syn_lengths.extend(len(c.tokens) for c in captions[1:])
        real_cos.append(cos.caption[0])
        syn_cos.extend(cos.caption[c.text_row] for c in captions[1:])
        sizes.append(store.image_size(i))
        scores.append(agreement_scores(cos))
        flagged += sum(bool(c.flags) for c in captions)
    K = store.dims["K"]
    return StoreSummary(
        indices=indices,
        scope=scope,
        real_lengths=np.asarray(real_lengths, dtype=np.int64),
        syn_lengths=np.asarray(syn_lengths, dtype=np.int64),
        real_cosines=np.asarray(real_cos, dtype=np.float64).reshape(-1, K),
        syn_cosines=np.asarray(syn_cos, dtype=np.float64).reshape(-1, K),
        image_sizes=np.asarray(sizes, dtype=np.int64).reshape(-1, 2),
        flagged_captions=flagged,
        outliers=OutlierRule.fit(np.asarray(scores, dtype=np.float64).reshape(len(indices), -1)),
    )
