"""convert's and reinforce's output folder: a store is someone's data. They resume their own
unfinished run, re-run their own finished one only as the same run, and otherwise refuse
(StoreExistsError naming the folder and what is there) unless told to overwrite; a run that
fails on its inputs creates nothing."""

from __future__ import annotations

import json
import os

import pytest
from mobileclip_fastload import StoreExistsError
from mobileclip_fastload.cli import main as cli_main
from mobileclip_fastload.convert import convert
from mobileclip_fastload.testing.datacompdr import make_dataset, open_store
from mobileclip_fastload.testing.synthetic_store import make_store


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("folder") / "src", num_shards=2, samples_per_shard=3, seed=7)


def snapshot(folder) -> dict[str, bytes]:
    return {
        n: open(os.path.join(folder, n), "rb").read()
        for n in sorted(os.listdir(folder))
        if os.path.isfile(os.path.join(folder, n))
    }


def run(dataset, out, **kw):
    return convert(dataset.dr_shards, str(out), executor="inline", progress=False, **kw)


def test_a_store_convert_did_not_make_is_refused_unless_overwrite(dataset, tmp_path):
    out = tmp_path / "someone_elses"
    make_store(out, n=5, J=1, S=1, K=1, D=4, seed=1)
    before = snapshot(out)
    with pytest.raises(StoreExistsError, match=r"someone_elses: holds a finished store \(manifest\.json and 1 shard"):
        run(dataset, out)
    assert snapshot(out) == before  # untouched: no new manifest, no orphaned shards
    report = run(dataset, out, overwrite=True)
    assert report.samples_written == 6 and len(open_store(str(out))) == 6
    assert not any(n.startswith("shard-") for n in os.listdir(out))  # the old store's shards went with it
    # and its shard index: the one there now is convert's own (schema 2, naming convert's shards)
    assert (out / "shards.idx").read_bytes() != before["shards.idx"]
    store = open_store(str(out))
    assert {store.shard_entry(n)["file"] for n in range(store.num_shards)} == {
        n for n in os.listdir(out) if n.endswith(".arrow")
    }


def test_own_finished_store_reruns_as_the_same_run_but_other_options_are_refused(dataset, tmp_path):
    out = tmp_path / "store"
    run(dataset, out)
    assert [s.status for s in run(dataset, out).shards] == ["resumed", "resumed"]
    before = snapshot(out)
    with pytest.raises(StoreExistsError, match="inputs or options differ"):
        run(dataset, out, embedding_dtype="int8")
    with pytest.raises(StoreExistsError):
        convert(dataset.dr_shards[:1], str(out), executor="inline", progress=False)  # fewer inputs: another store
    assert snapshot(out) == before


def test_an_unfinished_run_resumes(dataset, tmp_path):
    out = tmp_path / "store"
    run(dataset, out)
    os.unlink(out / "manifest.json")
    os.unlink(out / "_convert_done" / sorted(os.listdir(out / "_convert_done"))[1])
    assert [s.status for s in run(dataset, out).shards] == ["resumed", "converted"]


def test_another_tools_run_and_foreign_files(dataset, tmp_path):
    out = tmp_path / "reinforcing"
    (out / "_reinforce_done").mkdir(parents=True)
    (out / "_reinforce_done" / "t.all.json").write_text("{}")
    with pytest.raises(StoreExistsError, match=r"unfinished reinforce run \(_reinforce_done/"):
        run(dataset, out)
    run(dataset, out, overwrite=True)
    assert not (out / "_reinforce_done").exists()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(StoreExistsError, match=r"files that are not part of a store \('notes.txt'\)"):
            run(dataset, mine, overwrite=overwrite)
    assert os.listdir(mine) == ["notes.txt"]


def test_a_run_failing_on_its_inputs_creates_nothing(tmp_path):
    out = tmp_path / "never"
    with pytest.raises((OSError, ValueError)):
        convert([str(tmp_path / "missing-{000..003}.tar")], str(out), executor="inline", progress=False)
    assert not out.exists()


def test_cli_refuses_then_overwrites(dataset, tmp_path, capsys):
    out = tmp_path / "cli"
    make_store(out, n=4, J=1, S=1, K=1, D=4, seed=2)
    args = ["convert", *dataset.dr_shards, "-o", str(out), "--executor", "inline", "--no-progress", "-q"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "finished store" in err and "--overwrite" in err
    assert cli_main([*args, "--overwrite"]) == 0
    assert json.loads((out / "manifest.json").read_text())["num_samples"] == 6


def test_reinforce_refuses_before_loading_any_model(tmp_path):
    from mobileclip_fastload.reinforce import reinforce

    out = tmp_path / "converted"
    make_store(out, n=4, J=1, S=1, K=1, D=4, seed=3)
    before = snapshot(out)
    with pytest.raises(StoreExistsError, match=r"converted: holds a finished store"):
        reinforce([str(tmp_path / "in.tar")], str(out), teachers=["no-such-model"])
    assert snapshot(out) == before
