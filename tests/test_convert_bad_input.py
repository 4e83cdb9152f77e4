"""Bad input: every broken sample is skipped and counted with its reason and uid; a whole
unreadable shard is reported clearly; everything else is converted."""

import gzip
import io
import json
import os

import numpy as np
from mobileclip_fastload.convert import ALL_REASONS, convert
from mobileclip_fastload.testing.datacompdr import (
    assert_store_matches,
    decompression_bomb_png,
    joined_members,
    make_samples,
    open_store,
    write_tar,
)


def npz(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def gif_bytes():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, format="GIF")
    return buf.getvalue()


# (reason, how to break a sample's members: dict ext -> bytes, mutated in place)
def _drop(ext):
    return lambda m, s: m.pop(ext)


def _set(ext, value):
    return lambda m, s: m.__setitem__(ext, value(s) if callable(value) else value)


def _json_set(ext, key, value):
    def f(m, s):
        d = json.loads(m[ext])
        d[key] = value
        m[ext] = json.dumps(d).encode()

    return f


def _image(m):
    return next(e for e in ("jpg", "png", "webp") if e in m)


BREAKAGES = [
    ("missing_field", _drop("paug.json")),
    ("missing_field", _drop("txt")),
    ("missing_field", _drop("npz")),
    ("bad_json", _set("syn.json", b'{"syn_text": [')),
    ("bad_json", _set("syn.json", b"[" * 100_000)),  # nesting deep enough to overflow the parser's recursion
    ("bad_json", _set("json", b"[1, 2]")),  # uid unknowable: reported by key
    ("bad_json", _json_set("paug.json", "param_aug", "[[not json")),
    ("bad_json", _json_set("json", "sha256", "xyz")),
    ("bad_text", _set("txt", b"caf\xe9 latin-1")),
    ("shape_mismatch", _set("npz", lambda s: npz(image_emb=s.image_emb[:-1], text_emb=s.text_emb))),
    ("shape_mismatch", _set("npz", lambda s: npz(image_emb=s.image_emb, text_emb=s.text_emb[:, :-2]))),
    ("shape_mismatch", _json_set("syn.json", "syn_text", ["only one"])),
    (
        "non_finite_embedding",
        _set(
            "npz",
            lambda s: npz(
                image_emb=np.where(
                    np.arange(s.image_emb.size).reshape(s.image_emb.shape) == 5, np.nan, s.image_emb
                ).astype(np.float32),
                text_emb=s.text_emb,
            ),
        ),
    ),
    ("non_finite_embedding", _set("npz", lambda s: npz(image_emb=s.image_emb, text_emb=s.text_emb * np.float32(1e30)))),
    ("bad_embedding_file", _set("npz", b"PK\x03\x04 not really a zip")),
    ("bad_embedding_file", _set("npz", lambda s: _object_npz(s))),
    (
        "bad_embedding_file",
        lambda m, s: (m.pop("npz"), m.__setitem__("pth.gz", gzip.compress(b"\x80\x04not a torch file"))),
    ),
    ("bad_augmentation", lambda m, s: _break_aug(m, op=99)),
    ("bad_augmentation", lambda m, s: _break_aug(m, box=[0, 0, 0, 5])),
    ("missing_image", lambda m, s: m.pop(_image(m))),
    ("undecodable_image", lambda m, s: m.__setitem__(_image(m), b"this is not an image")),
    ("undecodable_image", lambda m, s: m.__setitem__(_image(m), m[_image(m)][: len(m[_image(m)]) // 2])),
    ("decompression_bomb", lambda m, s: (m.pop(_image(m)), m.__setitem__("png", decompression_bomb_png()))),
    ("unsupported_image_format", lambda m, s: (m.pop(_image(m)), m.__setitem__("png", gif_bytes()))),
    ("sha256_mismatch", _json_set("json", "sha256", "ab" * 32)),
]


def _object_npz(s):
    """An npz whose array needs pickle: must be refused, never unpickled."""
    buf = io.BytesIO()
    np.savez(buf, image_emb=np.array([{"x": 1}], dtype=object), text_emb=s.text_emb)
    return buf.getvalue()


def _break_aug(m, op=None, box=None):
    d = json.loads(m["paug.json"])
    entry = next(e for e in d["param_aug"] if e is not None)
    if op is not None:
        entry[1][0][0] = op
    if box is not None:
        entry[0] = box
    m["paug.json"] = json.dumps(d).encode()


def test_every_bad_sample_is_skipped_and_counted(tmp_path):
    n_bad = len(BREAKAGES)
    samples = make_samples(n_bad + 6, seed=21, image_size=(40, 64), formats=("JPEG",))
    good = samples[:6]
    tar_samples = []
    expected: dict[str, list[str]] = {}
    for k, s in enumerate(samples):
        members = dict(joined_members(s, json_mode="merged"))
        if k >= 6:
            reason, breaker = BREAKAGES[k - 6]
            breaker(members, s)
            uid_lost = members.get("json") == b"[1, 2]"
            expected.setdefault(reason, []).append(s.key if uid_lost else s.uid)
        tar_samples.append((s.key, list(members.items())))
        if k == 2:  # duplicate key and duplicate member right after a good sample
            tar_samples.append((good[0].key, joined_members(good[0])))
    dup_uid = make_samples(1, seed=21, start_index=0, image_size=(40, 64), formats=("JPEG",))[0]
    tar_samples.append(("another-key-same-uid", joined_members(dup_uid)))
    repeated = list(joined_members(good[1]))
    tar_samples.append(("repeated-member", [*repeated, repeated[0]]))
    expected["duplicate_key"] = [good[0].uid, good[0].uid, good[1].uid]

    src = tmp_path / "src"
    write_tar(src / "00.tar", tar_samples)
    # a truncated shard: its samples before the break are used, the broken one is counted
    more = make_samples(3, seed=22, start_index=100, image_size=(40, 64))
    write_tar(src / "01.tar", [(s.key, joined_members(s)) for s in more])
    data = (src / "01.tar").read_bytes()
    cut = data.index(b"000000102.npz")  # inside the last sample, before its npz header
    (src / "01.tar").write_bytes(data[: cut - 100])
    expected["truncated_sample"] = [more[2].key]  # its json (uid) was never reached: reported by key
    # whole shards that cannot be read
    (src / "02.tar").write_bytes(b"\x00garbage" * 1000)
    (src / "03.tar").write_bytes(b"")
    inputs = [str(src / f"{k:02d}.tar") for k in range(4)] + [str(src / "04-does-not-exist.tar")]

    out = str(tmp_path / "store")
    report = convert(inputs, out, executor="inline", progress=False)

    assert set(report.skipped) <= set(ALL_REASONS)
    assert report.skipped == {r: len(u) for r, u in sorted(expected.items())}
    for reason, uids in expected.items():
        assert sorted(report.skipped_uids(reason)) == sorted(uids), reason
    s0, s1 = report.shards[0], report.shards[1]
    assert s0.samples_in == len(tar_samples) and s0.samples_written == len(good)
    assert s1.samples_in == 3 and s1.samples_written == 2
    assert s1.tar_problem and ("truncated" in s1.tar_problem or "breaks" in s1.tar_problem)
    assert [s.status for s in report.shards] == ["converted", "converted", "unreadable", "unreadable", "unreadable"]
    for s in report.shards[2:]:
        assert s.error and s.input in s.error
    for s in report.shards:
        assert s.samples_in == s.samples_written + sum(s.skipped.values())
    summary = report.summary()
    assert "UNREADABLE" in summary and "decompression_bomb" in summary
    assert_store_matches(out, good + more[:2], emb_format="npz", embedding_dtype="float16")
    assert len(open_store(out)) == len(good) + 2
    assert open_store(out).verify() == []
    # unreadable shards leave no done record: a re-run retries them
    assert sorted(os.listdir(os.path.join(out, "_convert_done"))) == ["00.json", "01.json"]
