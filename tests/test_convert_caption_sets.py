"""DFNDR-style shards with several synthetic caption sets (``syn_text_<tag>`` in syn.json, each
with its own ``<key>_emb`` rows, ``text_emb`` holding the real caption only) -> a store whose
``caption_sets`` are the chosen sets, every row the source's; one chosen set -> the plain store;
sets picked by name, tag or regex (Apple's ``re.match``); samples missing a set skipped and counted."""

import json
import os

import numpy as np
import pytest
from mobileclip_fastload.convert import convert
from mobileclip_fastload.convert.cli import main as convert_cli
from mobileclip_fastload.convert.options import ConvertOptions
from mobileclip_fastload.store import MANIFEST_FILE, Dims
from mobileclip_fastload.store.caption_sets import (
    DEFAULT_SET_REGEX,
    find_set,
    matching_sets,
    resolve_set_names,
    select_sets,
    set_name,
)
from mobileclip_fastload.testing.datacompdr import (
    DEFAULT_DIMS,
    assert_store_matches,
    joined_members,
    make_dataset,
    make_samples,
    open_store,
    write_tar,
)

# DFNDR-2B's own set, and a second captioner's with another count: name order puts "coca" first
DFN, COCA = "syn_text_dfn_mscoco38k", "syn_text_coca"
SIZES = {DFN: 3, COCA: 2}


@pytest.fixture(scope="module")
def dfndr(tmp_path_factory):
    root = tmp_path_factory.mktemp("dfndr")
    return make_dataset(
        root, num_shards=2, samples_per_shard=4, seed=21, syn_tags=["dfn_mscoco38k", "coca"], syn_sizes=[3, 2]
    )


def run(ds_or_paths, out, **kw):
    paths = ds_or_paths.dr_shards if hasattr(ds_or_paths, "dr_shards") else ds_or_paths
    return convert(paths, str(out), executor="inline", progress=False, **kw)


def manifest(out) -> dict:
    with open(os.path.join(out, MANIFEST_FILE)) as f:
        return json.load(f)


def test_every_syn_text_set_is_stored_in_name_order_with_its_own_rows(dfndr, tmp_path):
    out = tmp_path / "store"
    report = run(dfndr, out)
    assert report.samples_written == 8 and not report.skipped
    assert report.caption_sets == [[COCA, 2], [DFN, 3]]
    assert "caption sets: syn_text_coca (2 captions), syn_text_dfn_mscoco38k (3 captions)" in report.summary()
    store = open_store(str(out))
    assert store.caption_sets == [(COCA, 2), (DFN, 3)] and store.dims["S"] == 5
    assert manifest(out)["caption_sets"] == [{"name": COCA, "S": 2}, {"name": DFN, "S": 3}]
    assert manifest(out)["metadata"]["converter"]["syn_key"] == [COCA, DFN]
    # every caption, token and text row (real caption, then each set's npz rows) is the source's
    assert_store_matches(str(out), dfndr.samples, emb_format="npz", embedding_dtype="float16", syn_key=[COCA, DFN])
    for src in dfndr.samples[:2]:  # and spelled out for one set's rows, independently of the helper
        i = next(i for i in range(len(store)) if store[i].uid == src.uid)
        rows = np.asarray(store[i].text_emb)
        np.testing.assert_array_equal(rows[1 + 2 :], src.syn_embs[DFN + "_emb"].astype(np.float16))
        assert list(store[i].syn_captions)[2:] == src.syn_captions[DFN]


def test_one_chosen_set_keeps_its_name(dfndr, tmp_path):
    """One tagged set alone is stored under its name (Apple's set regex, e.g. ^syn_text_dfn, finds it);
    only the set named syn_text is the plain store without the key."""
    out = tmp_path / "store"
    report = run(dfndr, out, syn_key="dfn_mscoco38k")  # a tag names syn_text_<tag>
    assert report.caption_sets == [[DFN, 3]] and report.samples_written == 8
    store = open_store(str(out))
    assert store.caption_sets == [(DFN, 3)]
    m = manifest(out)
    assert m["caption_sets"] == [{"name": DFN, "S": 3}] and m["metadata"]["converter"]["syn_key"] == DFN
    assert_store_matches(str(out), dfndr.samples, emb_format="npz", embedding_dtype="float16", syn_key=DFN)


def test_named_sets_are_stored_in_the_given_order(dfndr, tmp_path):
    out = tmp_path / "store"
    report = run(dfndr, out, syn_key=[DFN, "coca"])
    assert report.caption_sets == [[DFN, 3], [COCA, 2]]
    assert open_store(str(out)).caption_sets == [(DFN, 3), (COCA, 2)]
    assert_store_matches(str(out), dfndr.samples, emb_format="npz", embedding_dtype="float16", syn_key=[DFN, COCA])


def test_regex_picks_sets_as_apples_loader_does(tmp_path):
    ds = make_dataset(tmp_path / "src", num_shards=1, samples_per_shard=3, seed=22, syn_tags=["dfn_a", "dfn_b", "coca"])
    out = tmp_path / "store"
    report = run(ds, out, syn_key_regex="syn_text_dfn")  # re.match: anchored at the start only
    assert report.caption_sets == [["syn_text_dfn_a", 3], ["syn_text_dfn_b", 3]]
    assert_store_matches(
        str(out), ds.samples, emb_format="npz", embedding_dtype="float16", syn_key=["syn_text_dfn_a", "syn_text_dfn_b"]
    )
    # "dfn" is found inside every tagged key (re.search would pick them) but starts none
    with pytest.raises(ValueError, match="no key matching 'dfn'"):
        run(ds, tmp_path / "none", syn_key_regex="dfn")
    with pytest.raises(ValueError, match="not a regular expression"):
        run(ds, tmp_path / "bad", syn_key_regex="syn_text_(")
    with pytest.raises(ValueError, match="not both"):
        run(ds, tmp_path / "both", syn_key="coca", syn_key_regex="syn_text_dfn")
    assert not any((tmp_path / name).exists() for name in ("none", "bad", "both"))


def test_a_sample_missing_a_chosen_set_or_its_size_is_skipped_and_counted(tmp_path):
    samples = make_samples(6, seed=23, syn_tags=["dfn_mscoco38k", "coca"], syn_sizes=[3, 2])
    missing, short, no_rows = samples[2], samples[3], samples[4]
    del missing.syn_captions[COCA], missing.syn_embs[COCA + "_emb"]
    short.syn_captions[DFN] = short.syn_captions[DFN][:2]
    short.syn_embs[DFN + "_emb"] = short.syn_embs[DFN + "_emb"][:2]
    del no_rows.syn_embs[COCA + "_emb"]  # captions without their teacher rows
    path = write_tar(tmp_path / "dr" / "00000000.tar", [(s.key, joined_members(s)) for s in samples])
    out = tmp_path / "store"
    report = run([path], out)
    assert report.caption_sets == [[COCA, 2], [DFN, 3]]
    assert report.skipped == {"missing_field": 2, "shape_mismatch": 1}
    assert sorted(report.skipped_uids("missing_field")) == sorted([missing.uid, no_rows.uid])
    assert report.skipped_uids("shape_mismatch") == [short.uid]
    assert report.samples_in == report.samples_written + sum(report.skipped.values()) == 6
    kept = [s for s in samples if s not in (missing, short, no_rows)]
    assert_store_matches(str(out), kept, emb_format="npz", embedding_dtype="float16", syn_key=[COCA, DFN])
    # choosing only the set every sample has keeps the samples that lack the other one
    report = run([path], tmp_path / "dfn_only", syn_key=DFN)
    assert report.skipped == {"shape_mismatch": 1}


def test_legacy_syn_text_rows_and_a_tagged_set_together(tmp_path):
    """DataCompDR's ``syn_text`` (rows 1..S of ``text_emb``) plus a newer tagged set with its own rows."""
    import io

    samples = make_samples(3, seed=24)
    rng = np.random.default_rng(5)
    members = []
    extra = {}
    for s in samples:
        caps = [f"extra caption {k} of {s.uid}" for k in range(2)]
        rows = rng.standard_normal((2, DEFAULT_DIMS.KD)).astype(np.float32)
        extra[s.uid] = (caps, rows)
        m = dict(joined_members(s))
        m["syn.json"] = json.dumps({**s.syn_captions, "syn_text_new": caps}).encode()
        buf = io.BytesIO()
        np.savez(buf, image_emb=s.image_emb, text_emb=s.text_emb, syn_text_new_emb=rows)
        m["npz"] = buf.getvalue()
        members.append((s.key, list(m.items())))
    path = write_tar(tmp_path / "dr" / "00000000.tar", members)
    out = tmp_path / "store"
    report = run([path], out)
    assert report.caption_sets == [["syn_text", 3], ["syn_text_new", 2]] and report.samples_written == 3
    store = open_store(str(out))
    for i in range(len(store)):
        src = next(s for s in samples if s.uid == store[i].uid)
        caps, rows = extra[src.uid]
        assert list(store[i].syn_captions) == src.syn_captions["syn_text"] + caps
        want = np.concatenate([src.text_emb, rows]).astype(np.float16)
        np.testing.assert_array_equal(np.asarray(store[i].text_emb), want)


def test_cli_takes_several_syn_keys_or_a_regex(dfndr, tmp_path, capsys):
    out = tmp_path / "store"
    code = convert_cli([*dfndr.dr_shards, "-o", str(out), "--executor", "inline", "--no-progress",
                        "--syn-key", "dfn_mscoco38k", "--syn-key", COCA])  # fmt: skip
    assert code == 0
    assert open_store(str(out)).caption_sets == [(DFN, 3), (COCA, 2)]
    assert "caption sets: syn_text_dfn_mscoco38k (3 captions), syn_text_coca (2 captions)" in capsys.readouterr().out
    out = tmp_path / "regex"
    assert convert_cli([*dfndr.dr_shards, "-o", str(out), "--executor", "inline", "--no-progress",
                        "--syn-key-regex", "^syn_text_c"]) == 0  # fmt: skip
    assert open_store(str(out)).caption_sets == [(COCA, 2)]
    with pytest.raises(SystemExit):  # names or a regex, not both
        convert_cli([*dfndr.dr_shards, "-o", str(tmp_path / "x"), "--syn-key", "coca", "--syn-key-regex", "x"])


def test_dims_fix_one_set(dfndr, tmp_path):
    with pytest.raises(ValueError, match="one caption set"):
        run(dfndr, tmp_path / "x", dims=Dims(J=4, S=5, K=2, D=16), syn_key=[DFN, COCA])
    report = run(dfndr, tmp_path / "one", dims=Dims(J=4, S=3, K=2, D=16), syn_key="dfn_mscoco38k")
    assert report.caption_sets == [[DFN, 3]] and report.samples_written == 8


def test_a_plain_run_keeps_its_done_record_fingerprint():
    """Resuming a plain (syn_text) conversion made before caption sets keeps its finished shards; a tagged
    one-set run made then is redone: its shards now carry the set's name."""
    opts = ConvertOptions(layout="joined", dims=Dims(4, 3, 2, 16), caption_sets=(("syn_text", 3),))
    fp = opts.fingerprint()
    assert fp["syn_key"] == "syn_text" and "caption_sets" not in fp
    tagged = ConvertOptions(layout="joined", dims=Dims(4, 3, 2, 16), caption_sets=(("syn_text_blip", 3),))
    assert "syn_key" not in tagged.fingerprint() and tagged.fingerprint()["caption_sets"] == [["syn_text_blip", 3]]
    two = ConvertOptions(layout="joined", dims=Dims(4, 5, 2, 16), caption_sets=((COCA, 2), (DFN, 3)))
    assert two.fingerprint()["caption_sets"] == [[COCA, 2], [DFN, 3]]
    with pytest.raises(ValueError, match="add up"):
        ConvertOptions(layout="joined", dims=Dims(4, 4, 2, 16), caption_sets=((COCA, 2), (DFN, 3)))


# ---------------------------------------------------------------- the shared name and regex rule
KEYS = ["syn_text", "syn_text_coca", "syn_text_dfn_mscoco38k", "text", "my_syn_text"]


def test_apples_regex_rule_is_re_match():
    assert matching_sets(DEFAULT_SET_REGEX, KEYS) == ["syn_text", "syn_text_coca", "syn_text_dfn_mscoco38k"]
    assert matching_sets("syn_text_d", KEYS) == ["syn_text_dfn_mscoco38k"]  # anchored at the start only
    assert matching_sets("coca", KEYS) == []  # re.search would find it
    assert matching_sets("syn_text$", KEYS) == ["syn_text"]
    with pytest.raises(ValueError, match="matches none of the caption sets"):
        select_sets("coca", KEYS)


def test_names_and_tags():
    assert set_name("coca") == "syn_text_coca" and set_name("syn_text_coca") == "syn_text_coca"
    assert set_name("syn_text") == "syn_text"
    assert find_set("coca", KEYS) == "syn_text_coca" and find_set("text", KEYS) == "text"
    assert resolve_set_names(["dfn_mscoco38k", "syn_text"], KEYS) == ["syn_text_dfn_mscoco38k", "syn_text"]
    with pytest.raises(ValueError, match=r"no caption set 'blip' \(available"):
        resolve_set_names(["blip"], KEYS)
    with pytest.raises(ValueError, match="twice"):
        resolve_set_names(["coca", "syn_text_coca"], KEYS)
    with pytest.raises(TypeError):
        resolve_set_names("coca", KEYS)


# ---------------------------------------------------------------- end to end: DFNDR shards -> store -> loader
def test_the_loaders_choices_cover_both_sets_and_every_row_is_the_chosen_captions(dfndr, tmp_path):
    """The issue's "Must show": a DFNDR store with two caption sets whose loader choices cover
    both sets, every synthetic text row (and token row) being that of the chosen caption, as the
    source shards hold it; a regex or a name restricts the choice to its set."""
    from mobileclip_fastload import FastReinforcedLoader
    from mobileclip_fastload.tokenizer import tokenize

    out = str(tmp_path / "store")
    run(dfndr, out)
    store = open_store(out)
    names = [name for name, _ in store.caption_sets]
    offsets = {COCA: 0, DFN: 2}
    sources = {s.uid: s for s in dfndr.samples}

    def drawn(**kw) -> set[int]:
        loader = FastReinforcedLoader(
            out, batch_size=4, image_size=16, num_threads=1, seed=5, embedding_output_dtype="float32", **kw
        )
        sets = set()
        for epoch in range(4):
            loader.set_epoch(epoch)
            for batch in loader:
                for r in range(len(batch)):
                    src = sources[store[int(batch.index[r])].uid]
                    c, s = int(batch.caption_set[r]), int(batch.syn_index[r])
                    key = names[c]
                    k = s - offsets[key]  # the caption's place in its set
                    assert 0 <= k < SIZES[key], (key, s)
                    want_row = src.syn_embs[key + "_emb"][k].astype(np.float16).astype(np.float32)
                    np.testing.assert_array_equal(batch.syn_text_emb[r].numpy(), want_row)
                    want_tokens = np.asarray(tokenize(src.syn_captions[key][k]), dtype=np.int64)
                    got = batch.syn_text[r].numpy()
                    assert (
                        got[: len(want_tokens)].tolist() == want_tokens.tolist() and not got[len(want_tokens) :].any()
                    )
                    real = src.text_emb[0].astype(np.float16).astype(np.float32)
                    np.testing.assert_array_equal(batch.text_emb[r].numpy(), real)
                    sets.add(c)
        return sets

    assert drawn() == {0, 1}
    assert drawn(caption_sets="syn_text_d") == {names.index(DFN)}
    assert drawn(caption_sets=[COCA]) == {names.index(COCA)}
