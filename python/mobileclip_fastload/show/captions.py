"""The captions of one sample and the rules that flag degenerate ones.

`sample_captions` is the one place that knows how a store lays its captions out:
the real caption (text row 0), then the S synthetic captions of `syn_captions`
(text rows 1..S), set by set in `store.caption_sets` order (docs/FORMAT.md
"Caption sets"; a store without the key has the one set `syn_text`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mobileclip_fastload.store import MAX_TOKENS
from mobileclip_fastload.tokenizer import EOT_TOKEN_ID, SOT_TOKEN_ID

#: A unit of 1 to MAX_REPEAT_UNIT tokens repeated at least MIN_REPEATS times in a row is degenerate
#: (CoCa outside its trained context: "a 2 2 2 2", "a man a man a man").
MIN_REPEATS = 3
MAX_REPEAT_UNIT = 3

FLAG_EMPTY = "empty"
FLAG_REPEATED = "repeated tokens"
FLAG_CUT = "cut"
#: what each flag means, for the page's legend
FLAG_MEANINGS = {
    FLAG_EMPTY: "no text, or no token between start and end of text",
    FLAG_REPEATED: f"a run of 1-{MAX_REPEAT_UNIT} tokens repeated {MIN_REPEATS}+ times in a row",
    FLAG_CUT: f"longer than the {MAX_TOKENS}-token context: the stored tokens end mid-caption",
}


@dataclass(frozen=True)
class Caption:
    """One caption of a sample and the text-embedding row that belongs to it."""

    kind: str  # "real" or "synthetic"
    text: str
    tokens: np.ndarray  # uint16, SOT/EOT included, unpadded
    text_row: int  # row of the sample's text embeddings
    flags: list[str] = field(default_factory=list)
    caption_set: str | None = None  # the synthetic caption's set (``store.caption_sets`` name)


def caption_set_of_position(caption_sets: list[tuple[str, int]]) -> list[str]:
    """The set name of each flat synthetic position 0..S-1 (set i holds S_i positions after set i-1's)."""
    return [name for name, S in caption_sets for _ in range(S)]


def sample_captions(store, i: int) -> list[Caption]:
    """The real caption (text row 0) and the synthetic ones (rows 1..S, with their set) of sample i, flagged."""
    captions = [Caption("real", store.caption(i), np.asarray(store.caption_tokens(i)), 0)]
    sets = caption_set_of_position(list(store.caption_sets))
    for s, text in enumerate(store.syn_captions(i)):
        captions.append(Caption("synthetic", text, np.asarray(store.syn_tokens(i, s)), 1 + s, caption_set=sets[s]))
    for c in captions:
        c.flags.extend(degenerate_flags(c.text, c.tokens))
    return captions


def content_tokens(tokens: np.ndarray) -> np.ndarray:
    """The tokens between start and end of text."""
    t = np.asarray(tokens)
    if len(t) and t[0] == SOT_TOKEN_ID:
        t = t[1:]
    if len(t) and t[-1] == EOT_TOKEN_ID:
        t = t[:-1]
    return t


def longest_repeat(tokens: np.ndarray) -> int:
    """The most times a unit of 1..MAX_REPEAT_UNIT tokens follows itself without a break.

    A run of r positions where t[k] == t[k + u] spans r + u periodic tokens: (r + u) // u units."""
    t = content_tokens(tokens)
    best = 1 if len(t) else 0
    for unit in range(1, min(MAX_REPEAT_UNIT, len(t) - 1) + 1):
        same = np.concatenate([[False], t[unit:] == t[:-unit], [False]])
        edges = np.flatnonzero(np.diff(same.astype(np.int8)))  # run starts, then run ends
        if len(edges):
            best = max(best, (int((edges[1::2] - edges[::2]).max()) + unit) // unit)
    return best


def degenerate_flags(text: str, tokens: np.ndarray) -> list[str]:
    """Which of FLAG_EMPTY, FLAG_REPEATED, FLAG_CUT apply to a caption."""
    if not text.strip() or len(content_tokens(tokens)) == 0:
        return [FLAG_EMPTY]
    flags = []
    if longest_repeat(tokens) >= MIN_REPEATS:
        flags.append(FLAG_REPEATED)
    if len(tokens) >= MAX_TOKENS and _token_count(text) > MAX_TOKENS:
        flags.append(FLAG_CUT)
    return flags


def _token_count(text: str) -> int:
    # only captions that fill the context get here, so the tokenizer loads only when needed
    from mobileclip_fastload.tokenizer import default_tokenizer

    return len(default_tokenizer().encode(text)) + 2
