"""`reinforce` end to end with tiny random-init open_clip models (a CoCa, two CLIPs of
different image sizes): the stored rows are the teachers' embeddings of exactly the
pixels the reference Pillow + torchvision replay gives, the loader replays those
pixels, skips are reported with their reasons, the DataCompDR export converts back
to the same store, and runs are byte-reproducible and resumable."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mobileclip_fastload import FastReinforcedLoader, Store
from mobileclip_fastload.reference import reference_replay
from mobileclip_fastload.reinforce import OpenClipCaptioner, Teacher, reinforce
from mobileclip_fastload.reinforce.resume import done_record_path
from mobileclip_fastload.testing.image_text_pairs import BAD_KINDS, make_pair_shards
from mobileclip_fastload.testing.tiny_models import tiny_specs

J, S = 3, 2
BAD = tuple(BAD_KINDS)


def run(inputs, out, models, **kw):
    coca, teachers = models
    kw.setdefault("datacompdr_output", None)
    report = reinforce(
        inputs,
        out,
        teachers=teachers,
        captioners=[OpenClipCaptioner(coca, tag="tiny", num_captions=S, seq_len=8)],
        num_augmentations=J,
        seed=11,
        num_threads=2,
        batch_augmented_images=12,
        device="cpu",
        progress=False,
        **kw,
    )
    failed = [f"{s.input}: {s.status}: {s.error}" for s in report.unreadable_shards]
    assert not failed, "\n".join(failed)  # a shard's exception is reported, not raised: show it
    return report


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_specs(tmp_path_factory.mktemp("configs"))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_pair_shards(tmp_path_factory.mktemp("pairs"), num_shards=2, samples_per_shard=7, bad=BAD, seed=3)


@pytest.fixture(scope="module")
def reinforced(tmp_path_factory, models, shards, one_torch_thread):
    root = tmp_path_factory.mktemp("reinforced")
    return root, run(shards, root / "store", models, datacompdr_output=root / "dr")


def stored_image_pixels_and_rows(store, teacher, k, D, i, j):
    s = store.sample(i)
    pixels = reference_replay(s.image, s.aug[j], teacher.view.size, teacher.view.interpolation)
    return s, pixels, store.image_embs(i)[j, k * D : (k + 1) * D].astype(np.float32)


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# float16 keeps |x| < 1 to within 2.5e-4; fp32 batch-order differences are ~1e-6
ROW_TOLERANCE = 1e-3


def assert_is_row(emb, rows, j):
    """``emb`` (fp32, recomputed) is stored row ``j`` of ``rows`` [J, D] (float16), and no other row
    is closer: random-init teachers embed different crops similarly, so cosine alone is not enough."""
    distances = np.abs(rows.astype(np.float32) - emb[None]).max(axis=1)
    assert cosine(emb, rows[j].astype(np.float32)) >= 0.999
    assert distances[j] <= ROW_TOLERANCE and distances[j] == distances.min(), distances


@pytest.mark.slow
def test_stored_rows_are_teacher_embeddings_of_reference_replays(reinforced, models):
    root, _ = reinforced
    store = Store(root / "store")
    dims = store.dims
    assert (dims["J"], dims["S"], dims["K"], dims["D"]) == (J, S, 2, 16)
    teachers = [Teacher(spec, "cpu", "fp32") for spec in models[1]]
    assert teachers[0].view.size != teachers[1].view.size  # each teacher at its own size
    rng = np.random.default_rng(0)
    D = dims["D"]
    for i in rng.choice(len(store), size=5, replace=False):
        for k, teacher in enumerate(teachers):
            j = int(rng.integers(J))
            s, pixels, row = stored_image_pixels_and_rows(store, teacher, k, D, int(i), j)
            emb = teacher.embed_images(pixels[None])[0]
            assert_is_row(emb, store.image_embs(int(i))[:, k * D : (k + 1) * D], j)
            assert np.linalg.norm(row) == pytest.approx(1.0, abs=2e-3)  # each teacher slice normalised
            texts = teacher.embed_texts([s.caption, *s.syn_captions])
            stored_text = store.text_emb(int(i))[:, k * D : (k + 1) * D]
            for r in range(1 + S):
                assert_is_row(texts[r], stored_text, r)


def test_loader_replays_the_pixels_the_teachers_saw(reinforced, models):
    root, _ = reinforced
    store = Store(root / "store")
    D = store.dims["D"]
    for k, spec in enumerate(models[1]):
        teacher = Teacher(spec, "cpu", "fp32")
        loader = FastReinforcedLoader(
            root / "store",
            batch_size=len(store),
            image_size=teacher.view.size,
            interpolation=teacher.view.interpolation,
            image_dtype="uint8",
            shuffle=False,
            num_threads=2,
            seed=k,
        )
        batch = next(iter(loader))
        pixels = batch.images.permute(0, 2, 3, 1).numpy()  # uint8 [B, H, W, 3]
        embs = teacher.embed_images(pixels)
        for b in range(len(batch)):
            i, j = int(batch.index[b]), int(batch.aug_index[b])
            _, reference, _ = stored_image_pixels_and_rows(store, teacher, k, D, i, j)
            np.testing.assert_array_equal(pixels[b], reference)
            assert_is_row(embs[b], store.image_embs(i)[:, k * D : (k + 1) * D], j)
            np.testing.assert_array_equal(
                batch.image_emb[b, k * D : (k + 1) * D].numpy(), store.image_embs(i)[j, k * D : (k + 1) * D]
            )


def test_every_skip_is_counted_with_its_reason(reinforced):
    _, report = reinforced
    assert report.samples_in == 2 * 7 + len(BAD)
    assert report.samples_written == 2 * 7
    assert report.skipped == dict(sorted((reason, 1) for reason in BAD_KINDS.values()))
    for kind, reason in BAD_KINDS.items():
        (entry,) = report.skipped_samples(reason)
        assert entry["key"] == f"bad-{kind}" and entry["detail"]
    for shard in report.shards:
        assert shard.samples_in == shard.samples_written + sum(shard.skipped.values())
    assert report.as_dict()["augmented_images"] == 2 * 7 * J
    # every 5th input is a PNG, every 7th a WebP (which, if the loader cannot decode it exactly,
    # is stored as a lossless PNG of Pillow's pixels)
    kinds = {k for s in report.shards for k in s.image_kinds}
    assert {"JPEG/RGB", "PNG/RGB"} <= kinds and any(k.startswith("WEBP/RGB") for k in kinds)


def test_datacompdr_export_converts_back_to_the_same_store(reinforced, tmp_path):
    from mobileclip_fastload.convert import convert

    root, _ = reinforced
    back = convert(root / "dr", tmp_path / "back", executor="inline", progress=False, num_teachers=2)
    assert back.samples_written == 2 * 7 and not back.skipped
    a, b = Store(root / "store"), Store(tmp_path / "back")
    assert a.dims == b.dims and len(a) == len(b)
    # one captioner: the plain store, as before several caption sets (no caption_sets key anywhere)
    assert a.caption_sets == b.caption_sets == [("syn_text", S)]
    assert "caption_sets" not in json.loads((root / "store" / "manifest.json").read_text())
    for i in range(len(a)):
        sa, sb = a.sample(i), b.sample(i)
        for field in (
            "uid",
            "image",
            "width",
            "height",
            "orig_width",
            "orig_height",
            "caption",
            "syn_captions",
            "sha256",
            "flags",
        ):
            assert getattr(sa, field) == getattr(sb, field), field
        assert sa.aug.tobytes() == sb.aug.tobytes()
        np.testing.assert_array_equal(sa.image_emb, sb.image_emb)
        np.testing.assert_array_equal(sa.text_emb, sb.text_emb)
        np.testing.assert_array_equal(sa.caption_tokens, sb.caption_tokens)


def store_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.suffix == ".arrow" or p.name == "manifest.json")


def assert_same_store(a: Path, b: Path) -> None:
    names = store_files(a)
    assert names == store_files(b) and "manifest.json" in names
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert not mismatch and not errors


@pytest.mark.slow
def test_same_seed_same_bytes_and_resume_after_stop(reinforced, models, shards, tmp_path):
    root, _ = reinforced
    # stopped after the first shard, with a half-written part of the second left behind
    out, dr = tmp_path / "resumed", tmp_path / "dr"
    run(shards[:1], out, models, datacompdr_output=dr)
    leftovers = [out / ".00001-000.arrow.tmp-99999-deadbeef", dr / ".00001.tar.tmp-99999-deadbeef"]
    for path in leftovers:
        path.write_bytes(b"half a shard")
    (out / "00001-000.arrow").write_bytes(b"a stale part without a done record")
    report = run(shards, out, models, datacompdr_output=dr)
    assert [s.status for s in report.shards] == ["resumed", "converted"]
    assert_same_store(root / "store", out)
    assert not any(path.exists() for path in leftovers)
    assert sorted(os.listdir(dr)) == ["00000.tar", "00001.tar"]
    for name in os.listdir(dr):  # the DataCompDR export is byte-reproducible too
        assert (dr / name).read_bytes() == (root / "dr" / name).read_bytes()


def reinforce_in_child(models, shards, out, die_after_first_shard=False) -> subprocess.CompletedProcess:
    """``run`` in a fresh interpreter; prints the shard statuses. With ``die_after_first_shard`` the
    child SIGKILLs itself right after the first shard's done record is written: a real kill, at a
    point that does not depend on how loaded the machine is."""
    coca, (ta, tb) = models
    script = (
        "import json, os, signal, torch; torch.set_num_threads(1)\n"
        "import mobileclip_fastload.ingest.resume as resume\n"
        "write = resume.write_json_atomic\n"
        "def write_then_die(*a, **k):\n"
        "    write(*a, **k); os.kill(os.getpid(), signal.SIGKILL)\n"
        f"if {die_after_first_shard!r}: resume.write_json_atomic = write_then_die\n"
        "from mobileclip_fastload.reinforce import reinforce, OpenClipCaptioner, OpenClipSpec\n"
        f"r = reinforce({[str(s) for s in shards]!r}, {str(out)!r}, teachers=[{ta!r}, {tb!r}],\n"
        f"    captioners=[OpenClipCaptioner({coca!r}, tag='tiny', num_captions={S}, seq_len=8)],\n"
        f"    num_augmentations={J}, seed=11, num_threads=2, batch_augmented_images=12, device='cpu', progress=False)\n"
        "print(json.dumps([s.status for s in r.shards]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_store(models, shards, tmp_path):
    # Every run in its own fresh process, as a real resumed job: the captioner samples with torch's
    # global RNG, and a long-lived process's state (advanced by whatever ran in it before) is not part
    # of what a resume must reproduce.
    reference, out = tmp_path / "uninterrupted", tmp_path / "killed"
    done = reinforce_in_child(models, shards, reference)
    assert done.returncode == 0, done.stderr[-2000:]
    killed = reinforce_in_child(models, shards, out, die_after_first_shard=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    first, second = (done_record_path(str(out), tid, "all") for tid in ("00000", "00001"))
    assert os.path.exists(first), "the first shard never finished"
    assert not os.path.exists(second), "the second shard finished although the run was killed before it"
    assert not (out / "manifest.json").exists()
    resumed = reinforce_in_child(models, shards, out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout.strip().splitlines()[-1]) == ["resumed", "converted"]
    assert_same_store(reference, out)


@pytest.mark.slow
def test_captioning_pass_then_embedding_pass_gives_the_same_store(reinforced, models, shards, tmp_path):
    root, _ = reinforced
    out = tmp_path / "two-pass"
    captioned = run(shards, out, models, stage="captions")
    assert captioned.samples_written == 2 * 7 and not (out / "manifest.json").exists()
    report = run(shards, out, models)
    assert report.as_dict()["captions_generated"] == 0
    assert report.as_dict()["captions_from_pass"] == 2 * 7 * S
    assert_same_store(root / "store", out)


@pytest.mark.slow
def test_cli_on_an_image_folder_with_a_csv(tmp_path, models, capsys, one_torch_thread):
    import csv
    import tarfile

    from mobileclip_fastload.cli import build_parser

    coca, (ta, tb) = models
    (tar,) = make_pair_shards(tmp_path / "pairs", num_shards=1, samples_per_shard=4, seed=5)
    images = tmp_path / "images"
    rows = []
    with tarfile.open(tar) as tf:
        for m in tf.getmembers():
            key, ext = m.name.split(".", 1)
            if ext in ("jpg", "png", "webp"):
                (images / key).mkdir(parents=True)
                (images / key / f"photo.{ext}").write_bytes(tf.extractfile(m).read())
                rows.append({"image": f"{key}/photo.{ext}", "caption": f"picture {key}", "uid": f"u{key}"})
    rows.append({"image": "nowhere/missing.jpg", "caption": "lost", "uid": "u-missing"})
    with open(tmp_path / "captions.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "caption", "uid"])
        w.writeheader()
        w.writerows(rows)
    args = build_parser().parse_args(
        [
            "reinforce",
            str(tmp_path / "captions.csv"),
            "-o",
            str(tmp_path / "store"),
            "--image-root",
            str(images),
            "--model-config",
            coca.config_file,
            "--model-config",
            ta.config_file,
            "--model-config",
            tb.config_file,
            "--teacher",
            ta.name,
            "--teacher",
            tb.name,
            "--captioner",
            f"tiny={coca.name}",
            "-J",
            "2",
            "-S",
            "2",
            "--caption-length",
            "8",
            "--device",
            "cpu",
            "--num-threads",
            "2",
            "--rows-per-shard",
            "3",
            "--no-progress",
        ]
    )
    assert args._run(args) == 0
    out = capsys.readouterr().out
    assert "reinforced 4/5 samples" in out and "missing_image: u-missing" in out
    store = Store(tmp_path / "store")
    assert sorted(store.sample(i).uid for i in range(len(store))) == sorted(r["uid"] for r in rows[:4])
    assert store.num_shards == 2  # rows 0-2, 3-4


def test_bf16_autocast_path_stays_close_to_fp32(models, one_torch_thread):
    """The GPU path (bf16 autocast, inference mode) run on the CPU: same embeddings to bf16 accuracy."""
    rng = np.random.default_rng(1)
    for spec in models[1]:
        exact, fast = Teacher(spec, "cpu", "fp32"), Teacher(spec, "cpu", "bf16")
        pixels = rng.integers(0, 256, (6, exact.view.size, exact.view.size, 3), dtype=np.uint8)
        for a, b in zip(exact.embed_images(pixels), fast.embed_images(pixels)):
            assert cosine(a, b) >= 0.99 and np.linalg.norm(b) == pytest.approx(1.0, abs=1e-5)
        for a, b in zip(
            exact.embed_texts(["a dog", "two cats on a table"]), fast.embed_texts(["a dog", "two cats on a table"])
        ):
            assert cosine(a, b) >= 0.99


def tar_members(path: Path, ext: str) -> list:
    """Every sample's ``ext`` member of a DataCompDR tar, in order: JSON parsed, npz as its arrays."""
    import io
    import tarfile

    with tarfile.open(path) as tf:
        found = [tf.extractfile(m).read() for m in tf.getmembers() if m.name.endswith("." + ext)]
    if ext == "npz":
        return [dict(np.load(io.BytesIO(b))) for b in found]
    return [json.loads(b) for b in found]


@pytest.mark.slow
def test_several_captioners_give_several_caption_sets(models, shards, tmp_path, one_torch_thread):
    """The store keeps every captioner's set: the first as `syn_text`, the other as
    `syn_text_<tag>`, each of its own count, every row the teachers' embedding of its caption.
    The DataCompDR export holds the same sets and rows: converted back it gives the same store,
    and `convert --syn-key` picks one set of it."""
    from mobileclip_fastload.convert import convert

    coca, teachers = models
    captioners = [
        OpenClipCaptioner(coca, tag="first", num_captions=S, seq_len=8),
        OpenClipCaptioner(coca, tag="second", num_captions=S + 1, seq_len=10),
    ]
    reinforce(
        shards[1:],
        tmp_path / "store",
        teachers=teachers,
        captioners=captioners,
        num_augmentations=J,
        datacompdr_output=tmp_path / "dr",
        num_threads=2,
        device="cpu",
        progress=False,
    )
    store = Store(tmp_path / "store")
    sets = [("syn_text", S), ("syn_text_second", S + 1)]
    assert store.caption_sets == sets and store.dims["S"] == 2 * S + 1
    syn, npz = tar_members(tmp_path / "dr" / "00001.tar", "syn.json"), tar_members(tmp_path / "dr" / "00001.tar", "npz")
    assert len(store) == len(syn) > 0
    assert all(set(s) == {"syn_text", "syn_text_second"} and s["syn_text"] != s["syn_text_second"] for s in syn)
    D = store.dims["D"]
    teacher = Teacher(teachers[0], "cpu", "fp32")
    for i in range(len(store)):
        sample = store.sample(i)
        assert sample.syn_captions == syn[i]["syn_text"] + syn[i]["syn_text_second"]
        rows = store.text_emb(i)
        np.testing.assert_array_equal(rows[: 1 + S].astype(np.float32), npz[i]["text_emb"])
        np.testing.assert_array_equal(rows[1 + S :].astype(np.float32), npz[i]["syn_text_second_emb"])
        embedded = teacher.embed_texts([sample.caption, *sample.syn_captions])
        for r in range(1 + 2 * S + 1):
            assert_is_row(embedded[r], rows[:, :D], r)

    back = convert(tmp_path / "dr", tmp_path / "back", executor="inline", progress=False)
    assert back.caption_sets == [list(s) for s in sets] and not back.skipped
    converted = Store(tmp_path / "back")
    assert converted.caption_sets == sets and len(converted) == len(store)
    for i in range(len(store)):
        a, b = store.sample(i), converted.sample(i)
        assert (a.uid, a.caption, a.syn_captions) == (b.uid, b.caption, b.syn_captions)
        np.testing.assert_array_equal(a.text_emb, b.text_emb)
        for s in range(2 * S + 1):
            np.testing.assert_array_equal(store.syn_tokens(i, s), converted.syn_tokens(i, s))

    convert(tmp_path / "dr", tmp_path / "second", syn_key="second", executor="inline", progress=False)
    second = Store(tmp_path / "second")
    assert second.caption_sets == [("syn_text_second", S + 1)]  # one set alone keeps its name
    for i in range(len(second)):
        assert second.sample(i).syn_captions == syn[i]["syn_text_second"]
        np.testing.assert_array_equal(second.text_emb(i)[0], store.text_emb(i)[0])  # the real caption row
        np.testing.assert_array_equal(second.text_emb(i)[1:], store.text_emb(i)[1 + S :])
