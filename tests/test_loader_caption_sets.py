"""The loader's `caption_sets` option (docs/FORMAT.md, "Caption sets"): per sample one chosen set is drawn
uniformly, then one caption of it, both from (seed, epoch, sample); every delivered synthetic caption and
teacher row is that caption's; names and a regex restrict the draw; a one-set store draws exactly as the
loader did before caption sets (checked against an independent Python model of the random stream)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mobileclip_fastload import FastReinforcedLoader, Store
from mobileclip_fastload.testing.synthetic_store import make_store
from mobileclip_fastload_train.data import as_batch

N, J, S, K, D = 40, 2, 5, 2, 4
SETS = [("syn_text", 3), ("syn_text_dfn_mscoco38k", 2)]
FIRST = [0, 3]  # each set's first synthetic position


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory) -> str:
    return make_store(tmp_path_factory.mktemp("sets") / "store", n=N, J=J, S=S, K=K, D=D, seed=3, caption_sets=SETS)


@pytest.fixture(scope="module")
def one_set(tmp_path_factory) -> str:
    return make_store(tmp_path_factory.mktemp("plain") / "store", n=N, J=J, S=S, K=K, D=D, seed=3)


def padded(tokens: np.ndarray) -> np.ndarray:
    out = np.zeros(77, dtype=np.int64)
    out[: len(tokens)] = tokens
    return out


def choices(loader: FastReinforcedLoader, epochs=(0, 1)) -> dict[tuple[int, int], tuple[int, int]]:
    """(epoch, sample) -> (caption_set, syn_index) over whole epochs."""
    out = {}
    for epoch in epochs:
        loader.set_epoch(epoch)
        for b in loader:
            for i, c, s in zip(b.index.tolist(), b.caption_set.tolist(), b.syn_index.tolist()):
                out[(epoch, i)] = (c, s)
    return out


def test_both_sets_are_drawn_and_each_row_is_the_chosen_caption(two_sets):
    store = Store(two_sets)
    assert store.caption_sets == SETS
    loader = FastReinforcedLoader(two_sets, 8, image_size=8, num_threads=2, seed=4)
    assert loader.caption_sets == ["syn_text", "syn_text_dfn_mscoco38k"]
    per_set, positions = [0, 0], set()
    for epoch in range(3):
        loader.set_epoch(epoch)
        for b in loader:
            assert b.caption_set.dtype == torch.int64 and b.caption_set.shape == (len(b),)
            for r in range(len(b)):
                i, c, s = int(b.index[r]), int(b.caption_set[r]), int(b.syn_index[r])
                assert FIRST[c] <= s < FIRST[c] + SETS[c][1], f"sample {i}: position {s} outside set {c}"
                assert np.array_equal(b.syn_text[r].numpy(), padded(store.syn_tokens(i, s)))
                assert np.array_equal(b.syn_text_emb[r].numpy(), store.text_emb(i)[1 + s])
                assert np.array_equal(b.text_emb[r].numpy(), store.text_emb(i)[0])
                per_set[c] += 1
                positions.add(s)
    assert min(per_set) > 0.3 * sum(per_set), per_set  # about half each: one set drawn uniformly
    assert positions == set(range(S))
    assert torch.equal(as_batch(b).caption_set, b.caption_set)  # the training loop's batch carries it too


def test_mix_mode_takes_the_same_chosen_caption(two_sets):
    store = Store(two_sets)
    loader = FastReinforcedLoader(two_sets, 8, image_size=8, num_threads=1, caption_mode="mix", mix_probability=1.0)
    for b in loader:
        assert torch.equal(b.text, b.syn_text) and torch.equal(b.text_emb, b.syn_text_emb)
        for r in range(len(b)):
            i, s = int(b.index[r]), int(b.syn_index[r])
            assert np.array_equal(b.text[r].numpy(), padded(store.syn_tokens(i, s)))


@pytest.mark.parametrize(
    ("caption_sets", "chosen"),
    [
        (["syn_text_dfn_mscoco38k"], [1]),
        (["syn_text"], [0]),
        (["syn_text_dfn_mscoco38k", "syn_text"], [0, 1]),
        ("syn_text_dfn", [1]),  # a regex matched at the start of the name, as Apple's key regex
        ("syn_text", [0, 1]),
        (r"syn_text$", [0]),
        (r".*mscoco", [1]),
    ],
)
def test_names_or_a_regex_restrict_the_draw(two_sets, caption_sets, chosen):
    loader = FastReinforcedLoader(two_sets, 8, image_size=8, num_threads=1, seed=4, caption_sets=caption_sets)
    assert loader.caption_sets == [SETS[c][0] for c in chosen]  # in storage order, however they were given
    drawn = choices(loader)
    assert {c for c, _ in drawn.values()} == set(chosen)
    for (epoch, i), (c, s) in drawn.items():
        # The contract's draw: a chosen set by stream 7, then a caption of it by the existing stream 3.
        assert c == chosen[_below(_hash_key([4, epoch, i, 7]), len(chosen))]
        assert s == FIRST[c] + _below(_hash_key([4, epoch, i, 3]), SETS[c][1])


@pytest.mark.parametrize(
    ("caption_sets", "match"),
    [
        (["syn_text", "nope"], r"caption_sets: no caption set 'nope' \(available: \['syn_text', 'syn_text_dfn"),
        ("^dfn", r"caption_sets: caption set regex '\^dfn' matches none of the caption sets \['syn_text', 'syn_text_"),
        ("(", "not a regular expression"),
        ([], "no caption set named"),
        (["syn_text", "syn_text"], "named twice"),
    ],
)
def test_a_selection_that_chooses_nothing_known_is_a_value_error(two_sets, caption_sets, match):
    with pytest.raises(ValueError, match=match):
        FastReinforcedLoader(two_sets, 8, image_size=8, num_threads=1, caption_sets=caption_sets)


@pytest.mark.parametrize("caption_sets", [5, [0], [b"syn_text"]])
def test_a_selection_of_the_wrong_type_is_a_type_error(two_sets, caption_sets):
    with pytest.raises(TypeError, match="caption_sets must"):
        FastReinforcedLoader(two_sets, 8, image_size=8, num_threads=1, caption_sets=caption_sets)


def test_choices_do_not_depend_on_threads_or_ranks(two_sets):
    one = choices(FastReinforcedLoader(two_sets, 8, image_size=8, num_threads=1, seed=6))
    three = choices(FastReinforcedLoader(two_sets, 5, image_size=8, num_threads=3, seed=6))
    ranks: dict = {}
    for rank in range(2):
        ranks.update(
            choices(FastReinforcedLoader(two_sets, 4, image_size=8, num_threads=2, seed=6, rank=rank, world_size=2))
        )
    assert one == three == ranks
    assert len(one) == 2 * N
    other_seed = choices(FastReinforcedLoader(two_sets, 8, image_size=8, num_threads=1, seed=7))
    assert other_seed != one


# An independent model of the loader's per-sample random stream (rust/src/loader/rng.rs, sampler.rs):
# SplitMix64's finaliser, the key hash, Lemire's unbiased `below`; stream 3 picks the synthetic caption.
M64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _hash_key(words: list[int]) -> int:
    h = 0x6A09E667F3BCC908
    for w in words:
        h = _mix64(h ^ w)
    return h


def _below(key: int, n: int) -> int:
    x = _mix64(key)
    m = x * n
    threshold = ((1 << 64) - n) % n
    attempt = key
    while (m & M64) < threshold:
        attempt = (attempt + 1) & M64
        x = _mix64(attempt ^ 0xD1B54A32D192ED03)
        m = x * n
    return m >> 64


def test_a_one_set_store_draws_exactly_as_before_caption_sets(one_set, tmp_path):
    assert Store(one_set).caption_sets == [("syn_text", S)]
    loader = FastReinforcedLoader(one_set, 8, image_size=8, num_threads=2, seed=11)
    drawn = choices(loader, epochs=(0, 1, 2))
    assert len(drawn) == 3 * N
    for (epoch, i), (c, s) in drawn.items():
        assert c == 0
        assert s == _below(_hash_key([11, epoch, i, 3]), S), f"epoch {epoch} sample {i}"
    # A store written with its one set named is the same store, so the same batches.
    named = make_store(tmp_path / "named", n=N, J=J, S=S, K=K, D=D, seed=3, caption_sets=[("syn_text", S)])
    for a, b in zip(
        FastReinforcedLoader(one_set, 8, image_size=8, num_threads=1, seed=11),
        FastReinforcedLoader(named, 8, image_size=8, num_threads=1, seed=11, caption_sets=["syn_text"]),
    ):
        for name in ("images", "text", "syn_text", "image_emb", "text_emb", "syn_text_emb", "syn_index"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_the_chosen_sets_are_part_of_the_resume_state(two_sets):
    everything = FastReinforcedLoader(two_sets, 8, image_size=8, num_threads=1)
    state = everything.state_dict()
    assert state["caption_sets"] == ["syn_text", "syn_text_dfn_mscoco38k"]
    FastReinforcedLoader(two_sets, 8, image_size=8, num_threads=1).load_state_dict(state)
    narrowed = FastReinforcedLoader(two_sets, 8, image_size=8, num_threads=1, caption_sets=["syn_text"])
    with pytest.raises(ValueError, match="caption_sets"):
        narrowed.load_state_dict(state)
    # A state saved before caption sets existed drew from the store's every set.
    old = {k: v for k, v in state.items() if k != "caption_sets"}
    everything.load_state_dict(old)
    with pytest.raises(ValueError, match="caption_sets"):
        narrowed.load_state_dict(old)
