"""`mobileclip-fastload show`: the HTML view's numbers equal those computed from the
store here, independently; its replayed images equal the loader's pixels; planted
degenerate captions and an agreement outlier are flagged; a remote store (moto S3
on 127.0.0.1) gives the same page as the local one; reads stay bounded."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mobileclip_fastload import FastReinforcedLoader, Store
from mobileclip_fastload.cli import main
from mobileclip_fastload.show import write_view
from mobileclip_fastload.show.captions import (
    FLAG_CUT,
    FLAG_EMPTY,
    FLAG_REPEATED,
    MAX_REPEAT_UNIT,
    degenerate_flags,
    longest_repeat,
)
from mobileclip_fastload.show.summary import SUMMARY_SHARDS
from mobileclip_fastload.store import Sample, StoreWriter
from mobileclip_fastload.testing.synthetic_store import make_store, photo_jpeg, random_aug_records
from mobileclip_fastload.tokenizer import tokenize
from PIL import Image
from remote_s3 import options, upload

pytest.importorskip("matplotlib")

J, S, K, D = 4, 3, 2, 8


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    return Path(
        make_store(
            tmp_path_factory.mktemp("show") / "store", n=24, J=J, S=S, K=K, D=D, seed=7, target_shard_bytes=60_000
        )
    )


def page_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="show-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


def sections(html: str) -> dict[int, str]:
    parts = re.split(r'(?=<section class="sample")', html)
    return {int(re.search(r'data-index="(\d+)"', p).group(1)): p for p in parts if p.startswith("<section")}


def shown_cosines(section: str) -> dict[int, list[str]]:
    """Text of the caption rows' cosine cells: {text row: [teacher 0, teacher 1, ...]}."""
    rows = re.findall(r'<tr data-row="(\d+)">(.*?)</tr>', section, re.S)
    return {int(r): re.findall(r'<td class="cos" data-teacher="\d+">([-\d.]+)</td>', body) for r, body in rows}


def shown_augmentations(section: str) -> dict[int, np.ndarray]:
    found = re.findall(r'<img class="aug" alt="[^"]*" data-aug="(\d+)" src="data:image/png;base64,([^"]+)"', section)
    return {int(j): np.asarray(Image.open(io.BytesIO(base64.b64decode(b)))) for j, b in found}


def independent_rows(store: Store, values: np.ndarray, scales: np.ndarray | None) -> np.ndarray:
    """float32 [rows, K, D] computed here: float16 as numpy reads it, int8 as q * scale per (row, teacher)."""
    if store.embedding_dtype == "float16":
        x = np.asarray(values, dtype=np.float32).reshape(len(values), K, D)
    else:
        assert store.embedding_dtype == "int8"
        x = np.asarray(values, dtype=np.float32).reshape(len(values), K, D) * np.asarray(scales)[:, :, None]
    return x


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("embedding_dtype", ["float16", "int8"])
def test_page_numbers_equal_those_computed_from_the_store(tmp_path, embedding_dtype):
    path = make_store(tmp_path / "store", n=16, J=J, S=S, K=K, D=D, seed=3, embedding_dtype=embedding_dtype)
    out = tmp_path / "view.html"
    write_view(path, out, samples=[0, 5, -1], augmentations=2, image_size=24)
    html = out.read_text(encoding="utf-8")
    data = page_data(html)
    store = Store(path)
    assert [s["index"] for s in data["samples"]] == [0, 5, 15]
    assert f"{J} augmentations / {S} synthetic captions / {K} teachers / {D} dims" in html
    assert f"<td>{embedding_dtype}</td>" in html
    by_index = sections(html)
    for sample in data["samples"]:
        i = sample["index"]
        image = independent_rows(store, store.image_embs(i), store.image_emb_scales(i))
        text = independent_rows(store, store.text_emb(i), store.text_emb_scales(i))
        mean = image.mean(axis=0)
        texts = [store.caption(i), *store.syn_captions(i)]
        assert [c["text"] for c in sample["captions"]] == texts
        shown = shown_cosines(by_index[i])
        assert sorted(shown) == list(range(1 + S))
        for row, caption in enumerate(sample["captions"]):
            assert caption["text_row"] == row
            for k in range(K):
                expected = cosine(text[row, k], mean[k])
                assert caption["cosines"][k] == pytest.approx(expected, abs=1e-5)
                assert float(shown[row][k]) == pytest.approx(expected, abs=5e-4 + 1e-6)
        assert [a["j"] for a in sample["augmentations"]] == [0, 1]
        shown_aug = dict(re.findall(r'<span class="aug-cos" data-aug="(\d+)"><span[^>]*>([^<]*)</span>', by_index[i]))
        for aug in sample["augmentations"]:
            visible = [float(x) for x in shown_aug[str(aug["j"])].split(" / ")]
            for k in range(K):
                expected = cosine(image[aug["j"], k], mean[k])
                assert aug["cosines"][k] == pytest.approx(expected, abs=1e-5)
                assert visible[k] == pytest.approx(expected, abs=5e-4 + 1e-6)
        assert sample["size"] == list(store.image_size(i)) and sample["uid"] == store.uid(i)


def test_replayed_images_equal_the_loaders_pixels(store_path, tmp_path):
    size = 40
    loader = FastReinforcedLoader(
        store_path, batch_size=24, image_size=size, image_dtype="uint8", shuffle=False, num_threads=2, seed=11
    )
    seen = 0
    for epoch in range(3):  # several epochs: the loader picks other augmentations
        loader.set_epoch(epoch)
        (batch,) = list(loader)
        out = tmp_path / f"view{epoch}.html"
        write_view(store_path, out, samples=batch.index.tolist(), augmentations=J, image_size=size)
        by_index = sections(out.read_text(encoding="utf-8"))
        for b, i in enumerate(batch.index.tolist()):
            augs = shown_augmentations(by_index[i])
            assert sorted(augs) == list(range(J))
            j = int(batch.aug_index[b])
            assert np.array_equal(augs[j], batch.images[b].permute(1, 2, 0).numpy()), (i, j)
            seen += 1
    assert seen == 72


def planted_store(path: Path) -> tuple[str, list[list[str]]]:
    """Captions with planted defects and one sample whose real caption disagrees with its image."""
    rng = np.random.default_rng(0)
    long_text = " ".join(f"word{w} and" for w in range(60))
    real = ["a dog running on a beach", "a 2 2 2 2", "", long_text, "a red car parked by a house"] + [
        f"a photo of thing number {i} on a table" for i in range(5, 30)
    ]
    syn = [["a man a man a man riding", "a cat", "two cups of coffee on a table"]] + [
        [f"synthetic {s} about photo {i}" for s in range(S)] for i in range(1, 30)
    ]
    expected = [[[FLAG_REPEATED], [], []]] + [[[]] * S for _ in range(1, 30)]
    expected_real = [[], [FLAG_REPEATED], [FLAG_EMPTY], [FLAG_CUT], []] + [[] for _ in range(5, 30)]
    with StoreWriter(path, J=J, S=S, K=K, D=D) as w:
        for i in range(30):
            jpeg, width, height = photo_jpeg(rng, max_side=96)
            base = rng.standard_normal((K, D))
            image = base + 0.2 * rng.standard_normal((J, K, D))
            text = base + 0.6 * rng.standard_normal((1 + S, K, D))
            if i == 7:
                text[0] = -base  # the planted agreement outlier
            unit = lambda x: (x / np.linalg.norm(x, axis=-1, keepdims=True)).reshape(len(x), K * D)  # noqa: E731
            w.add(
                Sample(
                    uid=f"p{i}",
                    image=jpeg,
                    width=width,
                    height=height,
                    orig_width=width,
                    orig_height=height,
                    caption=real[i],
                    caption_tokens=tokenize(real[i]),
                    syn_captions=syn[i],
                    syn_tokens=[tokenize(t) for t in syn[i]],
                    aug=random_aug_records(rng, J, width, height),
                    image_emb=unit(image).astype(np.float16),
                    text_emb=unit(text).astype(np.float16),
                )
            )
    return str(path), [[real_flags, *syn_flags] for real_flags, syn_flags in zip(expected_real, expected)]


def test_degenerate_captions_and_agreement_outlier_are_flagged(tmp_path):
    path, expected = planted_store(tmp_path / "planted")
    out = tmp_path / "view.html"
    assert main(["show", path, "-o", str(out), "--samples", "0,1,2,3,4,7,8", "--augmentations", "1"]) == 0
    html = out.read_text(encoding="utf-8")
    data = page_data(html)
    by_index = sections(html)
    for sample in data["samples"]:
        i = sample["index"]
        assert [c["flags"] for c in sample["captions"]] == expected[i], i
        shown_flags = re.findall(r'<tr data-row="\d+">.*?</tr>', by_index[i], re.S)
        for row, flags in zip(shown_flags, expected[i]):
            assert re.findall(r'<span class="flag">([^<]*)</span>', row) == flags
        outlying = [o["score"] for o in sample["outliers"]]
        if i == 7:
            assert any("real-caption cosine" in s for s in outlying), sample["outliers"]
            assert "agreement outlier" in by_index[i]
        else:
            assert outlying == [], (i, sample["outliers"])
    assert "4 of 120 captions flagged as degenerate" in html


@pytest.mark.parametrize(
    "text",
    [
        "a dog running on a beach",
        "two cups of coffee, one of them empty",
        "a bus on the street in the city",
        "the the quick fox",
    ],
)
def test_ordinary_captions_have_no_flags(text):
    assert degenerate_flags(text, tokenize(text)) == []


@given(st.lists(st.integers(1, 3), max_size=24))
def test_longest_repeat_equals_the_plain_definition(content):
    """The vectorised count equals: for each unit length and start, count the copies that follow."""
    plain = 1 if content else 0
    for unit in range(1, MAX_REPEAT_UNIT + 1):
        for start in range(len(content)):
            count = 1
            while content[start + count * unit : start + (count + 1) * unit] == content[start : start + unit]:
                count += 1
            plain = max(plain, count)
    assert longest_repeat(np.array([49406, *content, 49407], dtype=np.uint16)) == plain


def test_reads_stay_in_the_shown_samples_and_a_bounded_subset(tmp_path):
    path = make_store(tmp_path / "many", n=90, J=2, S=1, K=2, D=4, seed=1, target_shard_bytes=12_000)
    store = Store(path)
    assert store.num_shards > SUMMARY_SHARDS + 4, "the test needs more shards than the summary may touch"
    report = write_view(store, tmp_path / "view.html", samples=[0, 1], augmentations=1, image_size=16)
    assert report.summary_size <= 1000
    assert store.shards_mapped <= SUMMARY_SHARDS


def test_an_undecodable_image_is_reported_on_its_sample_not_fatal(tmp_path):
    path = make_store(tmp_path / "store", n=6, J=2, S=1, K=2, D=4, seed=2, corrupt=(3,))
    out = tmp_path / "view.html"
    write_view(path, out, samples=[2, 3], augmentations=2, image_size=16)
    by_index = sections(out.read_text(encoding="utf-8"))
    assert "image does not decode" in by_index[3] and shown_augmentations(by_index[3]) == {}
    assert "uid &#x27;sample-00003&#x27;" in by_index[3]
    assert "image does not decode" not in by_index[2] and sorted(shown_augmentations(by_index[2])) == [0, 1]


def test_cli_rejects_a_sample_out_of_range(store_path, tmp_path, capsys):
    assert main(["show", str(store_path), "-o", str(tmp_path / "v.html"), "--samples", "24"]) == 2
    assert "sample 24 out of range" in capsys.readouterr().err
    assert not (tmp_path / "v.html").exists()


def test_a_remote_store_gives_the_local_page(store_path, tmp_path, s3, s3_endpoint):
    url = upload(s3, store_path, "show")
    remote_out, local_out = tmp_path / "remote.html", tmp_path / "local.html"
    args = ["--samples", "2,19", "--augmentations", "3", "--image-size", "32"]
    storage = [a for k, v in options(s3_endpoint).items() for a in ("--storage-option", f"{k}={v}")]
    assert main(["show", url, "-o", str(remote_out), "--cache-dir", str(tmp_path / "cache"), *storage, *args]) == 0
    write_view(store_path, local_out, samples=[2, 19], augmentations=3, image_size=32)
    remote, local = remote_out.read_text(encoding="utf-8"), local_out.read_text(encoding="utf-8")
    assert page_data(remote)["samples"] == page_data(local)["samples"]
    for i in (2, 19):
        from_remote, from_local = shown_augmentations(sections(remote)[i]), shown_augmentations(sections(local)[i])
        assert sorted(from_remote) == [0, 1, 2]
        assert all(np.array_equal(from_remote[j], from_local[j]) for j in from_remote)
    assert "s3://stores/show" in remote


def test_captions_are_listed_per_caption_set(tmp_path):
    """A store with two caption sets (converted from DFNDR-style shards): every synthetic caption
    is shown with its set, at its text row, and the header lists the sets."""
    from mobileclip_fastload.convert import convert
    from mobileclip_fastload.testing.datacompdr import make_dataset

    ds = make_dataset(
        tmp_path / "src", num_shards=1, samples_per_shard=3, seed=9, syn_tags=["b", "a"], syn_sizes=[1, 2]
    )
    convert(ds.dr_shards, tmp_path / "store", executor="inline", progress=False)
    store = Store(tmp_path / "store")
    assert store.caption_sets == [("syn_text_a", 2), ("syn_text_b", 1)]
    out = tmp_path / "view.html"
    write_view(store, out, samples=[0, 1, 2], augmentations=0, image_size=24)
    html = out.read_text(encoding="utf-8")
    assert "syn_text_a (2 captions), syn_text_b (1 captions)" in html
    by_index = sections(html)
    by_uid = {s.uid: s for s in ds.samples}
    for sample in page_data(html)["samples"]:
        src = by_uid[sample["uid"]]
        shown = [(c["caption_set"], c["text"], c["text_row"]) for c in sample["captions"]]
        want = [("syn_text_a", t) for t in src.syn_captions["syn_text_a"]]
        want += [("syn_text_b", t) for t in src.syn_captions["syn_text_b"]]
        assert shown == [(None, src.caption, 0)] + [(name, t, 1 + r) for r, (name, t) in enumerate(want)]
        kinds = re.findall(r'<td class="kind">([^<]*)</td>', by_index[sample["index"]])
        assert kinds == ["real", "synthetic (syn_text_a)", "synthetic (syn_text_a)", "synthetic (syn_text_b)"]
