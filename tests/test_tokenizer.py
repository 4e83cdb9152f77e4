"""The converter's CLIP BPE ids must equal open_clip 3.3.0's, id for id."""

import numpy as np
import open_clip.tokenizer as open_clip_tokenizer  # in the test extra: missing means a broken install, not a skip
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mobileclip_fastload.testing.datacompdr import make_samples
from mobileclip_fastload.tokenizer import (
    CONTEXT_LENGTH,
    EOT_TOKEN_ID,
    SOT_TOKEN_ID,
    ClipTokenizer,
    default_bpe_path,
    default_tokenizer,
    tokenize,
)


def test_shipped_vocabulary_is_open_clips_file():
    from pathlib import Path

    shipped = Path(default_bpe_path()).read_bytes()
    assert shipped == (Path(open_clip_tokenizer.__file__).parent / "bpe_simple_vocab_16e6.txt.gz").read_bytes()


@pytest.fixture(scope="module")
def reference():
    return open_clip_tokenizer.SimpleTokenizer()


def reference_ids(ref, text: str) -> np.ndarray:
    """open_clip.tokenize's row for ``text``, with the zero padding removed."""
    row = ref([text])[0].numpy()
    # Padding is zeros after EOT; id 0 ('!') can only occur before EOT.
    return row[: int(np.nonzero(row == EOT_TOKEN_ID)[0][-1]) + 1]


def assert_same(ref, text: str) -> None:
    ours = tokenize(text)
    expected = reference_ids(ref, text)
    assert ours.dtype == np.uint16
    assert ours.tolist() == expected.tolist(), repr(text)


FIXED = [
    "",
    " ",
    "a photo of a dog",
    "A Photo Of A DOG!!!",
    "It's   we'LL  'S 'd 'Re",
    "Ünïcödé café naïve Straße İstanbul",
    "日本語のテキスト 123 ☃️ emoji 😀👍🏽",
    "&amp; &amp;amp; &lt;b&gt; &#x27; &quot;",
    "<start_of_text> <END_OF_TEXT> literal specials",
    "tab\tnew\nline\r\nwindows \u2028 sep \x00 nul \x1b[31m red",
    "mojibake: cafÃ© â€œquotesâ€\x9d",
    "ﬁne ﬂower ＬＯＵＤ　ＮＯＩＳＥＳ",
    "a" * 400,
    " ".join(["word"] * 120),  # > 77 tokens: truncated with EOT last
    "0123456789" * 10,
    "\ud800 lone surrogate",
]


@pytest.mark.parametrize("text", FIXED)
def test_fixed_corpus(reference, text):
    assert_same(reference, text)


def test_generated_captions(reference):
    """Every caption the test data generator makes (real and synthetic, incl. long ones)."""
    for s in make_samples(40, seed=3, image_size=(40, 48), long_caption_fraction=0.3):
        for text in [s.caption, *s.syn_captions["syn_text"]]:
            assert_same(reference, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_unicode(reference, text):
    assert_same(reference, text)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=300))
def test_random_ascii_incl_controls(reference, text):
    """Exercises the ftfy-bypass fast path and its boundary (controls, '&')."""
    assert_same(reference, text)


# open_clip unescapes HTML twice (after ftfy, which unescapes some entities itself): named ones with
# and without ';', numeric, hex, invalid code points, doubly escaped, and bare '&'.
HTML_ENTITIES = [
    "&amp;",
    "&amp",
    "&AMP;",
    "&lt",
    "&lt;",
    "&gt;",
    "&quot;",
    "&#39;",
    "&#x27;",
    "&#X27;",
    "&apos;",
    "&nbsp;",
    "&copy",
    "&eacute;",
    "&notin;",
    "&notit;",
    "&amp;lt;",
    "&amp;amp;amp;",
    "&#128512;",
    "&#x1F600;",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "&#65",
    "&#",
    "&#x",
    "&",
    "&;",
    "&unknown;",
]
html_text_st = st.lists(st.tuples(st.text(max_size=6), st.sampled_from(HTML_ENTITIES)), min_size=1, max_size=8).map(
    lambda parts: "".join(text + entity for text, entity in parts)
)


@settings(max_examples=150, deadline=None)
@given(html_text_st)
def test_html_entities(reference, text):
    """Every example holds at least one entity, glued to random text on both sides."""
    assert_same(reference, text)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["dog", "cat", "the", "a", "photo", "1", "!", "über", "东京"]), min_size=60, max_size=120)
)
def test_truncation_to_context_length(reference, words):
    text = " ".join(words)
    ids = tokenize(text)
    assert len(ids) <= CONTEXT_LENGTH
    assert ids[0] == SOT_TOKEN_ID and ids[-1] == EOT_TOKEN_ID
    assert_same(reference, text)


def test_cache_eviction_keeps_results_exact(reference):
    tok = ClipTokenizer(max_cache_words=8)
    texts = [f"word{i} other{i} <start_of_text> café" for i in range(30)]
    for t in texts:
        assert tok.tokenize(t).tolist() == reference_ids(reference, t).tolist()
    assert len(tok._word_cache) <= 8 + 2


def test_pad_matches_open_clip_layout(reference):
    texts = ["a dog", "", " ".join(["x"] * 100)]
    padded = default_tokenizer().pad(default_tokenizer().tokenize_many(texts))
    assert padded.dtype == np.int64
    assert np.array_equal(padded, reference(texts).numpy())
