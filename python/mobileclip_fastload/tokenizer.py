"""OpenAI CLIP BPE tokenisation, id-for-id equal to open_clip 3.3.0.

The ids are those of ``open_clip.tokenizer.SimpleTokenizer`` (what
``open_clip.tokenize`` uses): ``[SOT] + encode(text) + [EOT]``, truncated to
``context_length`` the way open_clip truncates (keep the first 77, then force the
last one to EOT), and *not* padded.

Why not call open_clip directly: importing ``open_clip.tokenizer`` imports the
whole of open_clip (models, timm, torch), about 4-5 s per worker process, and its
``encode`` costs ~50 us per caption, of which the byte-level encoding, the BPE
string round trip and the vocabulary look-ups are redone for every word. This
module reads the same merges file (shipped in this package, ``vocab/``: byte
for byte open_clip's copy, so open_clip need not be installed), applies the
same cleaning (ftfy + double html unescape + whitespace collapse + lower-case)
and the same pre-tokenising regex, and caches each word's final ids. Equality with open_clip is
checked in ``tests/test_tokenizer.py`` (fixed corpora and hypothesis over random Unicode).
"""

from __future__ import annotations

import gzip
import html
import itertools
import os
import threading
from collections.abc import Iterable, Sequence
from importlib import resources

import numpy as np

SOT_TOKEN_ID = 49406
EOT_TOKEN_ID = 49407
CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408

_SPECIAL_TOKENS = ("<start_of_text>", "<end_of_text>")
# open_clip's pre-tokeniser: special tokens, English contractions, letter runs,
# single digits, runs of anything else that is not whitespace.
_PATTERN = "|".join(_SPECIAL_TOKENS) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
# Number of merges open_clip reads from the vocabulary file (49152 - 256 - 2).
_NUM_MERGES = 49152 - 256 - 2


def default_bpe_path() -> str:
    """The merges file shipped with this package (a copy of open_clip's; see vocab/README.md)."""
    return os.fspath(resources.files("mobileclip_fastload") / "vocab" / "bpe_simple_vocab_16e6.txt.gz")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP reversible byte -> printable character table."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _is_plain_ascii(text: str) -> bool:
    """True when ftfy and html.unescape are provably no-ops on ``text``.

    Printable ASCII (0x20..0x7e) has no mojibake, controls, ligatures, wide forms,
    curly quotes, line breaks or surrogates for ftfy to fix and is already NFC;
    without '&' there is no HTML entity to unescape.
    """
    return text.isascii() and text.isprintable() and "&" not in text


class ClipTokenizer:
    """Exact, cached re-implementation of open_clip's ``SimpleTokenizer`` ids.

    Thread-safe for concurrent use (the word cache is only ever filled with
    final values; a clear under contention just costs recomputation).
    """

    def __init__(self, bpe_path: str | None = None, *, max_cache_words: int = 500_000):
        import ftfy  # open_clip's own dependency; imported here so the module imports cheaply
        import regex

        self._fix_text = ftfy.fix_text
        self._pattern = regex.compile(_PATTERN, regex.IGNORECASE)
        self._byte_encoder = _bytes_to_unicode()
        with gzip.open(bpe_path or default_bpe_path()) as f:
            lines = f.read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
        base = list(self._byte_encoder.values())
        vocab = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + list(_SPECIAL_TOKENS)
        self._encoder = {token: i for i, token in enumerate(vocab)}
        if len(self._encoder) != VOCAB_SIZE:
            raise ValueError(f"unexpected CLIP vocabulary size {len(self._encoder)} (expected {VOCAB_SIZE})")
        self._ranks = {pair: rank for rank, pair in enumerate(merges)}
        self._max_cache_words = max_cache_words
        self._word_cache: dict[str, tuple[int, ...]] = {}
        self._special_ids = {t: (self._encoder[t],) for t in _SPECIAL_TOKENS}
        self._word_cache.update(self._special_ids)
        self._lock = threading.Lock()

    # -- cleaning ---------------------------------------------------------------
    def clean(self, text: str) -> str:
        """open_clip's ``_clean_lower``: ftfy, html unescape twice, collapse whitespace, lower."""
        if not _is_plain_ascii(text):
            text = self._fix_text(text)
            text = html.unescape(html.unescape(text))
        return " ".join(text.split()).lower()

    # -- BPE ----------------------------------------------------------------------
    def _bpe(self, symbols: list[str]) -> list[str]:
        """Greedy lowest-rank merging, all non-overlapping occurrences left to right."""
        ranks = self._ranks
        while len(symbols) > 1:
            best_rank = None
            best_pair = None
            for pair in itertools.pairwise(symbols):
                rank = ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best_pair = rank, pair
            if best_pair is None:
                break
            first, second = best_pair
            merged: list[str] = []
            i, n = 0, len(symbols)
            while i < n:
                if i < n - 1 and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols

    def _word_ids(self, word: str) -> tuple[int, ...]:
        ids = self._word_cache.get(word)
        if ids is not None:
            return ids
        chars = [self._byte_encoder[b] for b in word.encode("utf-8")]
        chars[-1] += "</w>"
        ids = tuple(self._encoder[s] for s in self._bpe(chars))
        if len(self._word_cache) >= self._max_cache_words:
            with self._lock:
                self._word_cache.clear()
                self._word_cache.update(self._special_ids)
        self._word_cache[word] = ids
        return ids

    # -- public API ------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` without SOT/EOT (open_clip ``SimpleTokenizer.encode``)."""
        out: list[int] = []
        for word in self._pattern.findall(self.clean(text)):
            out.extend(self._word_ids(word))
        return out

    def tokenize(self, text: str, context_length: int = CONTEXT_LENGTH) -> np.ndarray:
        """``[SOT] + encode(text) + [EOT]`` as uint16, truncated like open_clip, unpadded."""
        ids = [SOT_TOKEN_ID, *self.encode(text), EOT_TOKEN_ID]
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = EOT_TOKEN_ID
        return np.asarray(ids, dtype=np.uint16)

    def tokenize_many(self, texts: Iterable[str], context_length: int = CONTEXT_LENGTH) -> list[np.ndarray]:
        return [self.tokenize(t, context_length) for t in texts]

    def pad(self, token_lists: Sequence[np.ndarray], context_length: int = CONTEXT_LENGTH) -> np.ndarray:
        """Zero-pad unpadded id arrays into open_clip's [N, context_length] int64 layout."""
        out = np.zeros((len(token_lists), context_length), dtype=np.int64)
        for row, ids in zip(out, token_lists):
            row[: len(ids)] = ids
        return out


_default: ClipTokenizer | None = None
_default_lock = threading.Lock()


def default_tokenizer() -> ClipTokenizer:
    """A process-wide tokenizer, built on first use (loading the merges takes ~0.1 s)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = ClipTokenizer()
    return _default


def tokenize(text: str, context_length: int = CONTEXT_LENGTH) -> np.ndarray:
    """Unpadded uint16 CLIP BPE ids of ``text`` incl. SOT/EOT, at most ``context_length``."""
    return default_tokenizer().tokenize(text, context_length)
