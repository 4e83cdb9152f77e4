"""The ingest core's resume pieces: the Rust temp-name rule as Python sees it (``_core.temp_target``) and the
removal of a task's stale outputs and temporaries built on it."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mobileclip_fastload import _core
from mobileclip_fastload.ingest import resume
from mobileclip_fastload.store.atomic import temp_name

NAME = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}", fullmatch=True)


@given(NAME)
def test_every_temp_name_the_writer_makes_names_its_final_file(name):
    assert _core.temp_target(temp_name(f"/x/{name}").name) == name
    assert _core.temp_target(f"{name}.tmp-{os.getpid()}") == name  # the older form of done records


@pytest.mark.parametrize(
    "name", ["t-000.arrow", ".tmp-5", "a.tmp-", "a.tmp-12-xyz", "a.tmp-12-0123abcde", "..tmp-1-0123abcd", "done.json"]
)
def test_other_names_are_not_temp_names(name):
    assert _core.temp_target(name) is None


def test_a_tasks_parts_and_their_temporaries_go_other_tasks_files_stay(tmp_path):
    ours = ["t-000.arrow", "t-012.arrow", temp_name(tmp_path / "t-001.arrow").name, "t-002.arrow.tmp-4194305"]
    others = [
        "t-x.arrow",
        "tt-000.arrow",
        "u-000.arrow",
        temp_name(tmp_path / "u-000.arrow").name,
        "t-000.arrowx",
        "t.tar",
        temp_name(tmp_path / "t.tar.gz").name,
        "manifest.json",
    ]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"x")
    removed = resume.remove_task_files(str(tmp_path), lambda n: resume.is_store_part(n, "t"))
    assert removed == sorted(ours)
    assert sorted(os.listdir(tmp_path)) == sorted(others)


def test_only_temporaries_when_the_final_file_is_replaced_on_publish(tmp_path):
    final, tmp = tmp_path / "t.jsonl", temp_name(tmp_path / "t.jsonl")
    final.write_text("kept")
    tmp.write_text("half")
    assert resume.remove_task_files(str(tmp_path), lambda n: n == "t.jsonl", finals=False) == [tmp.name]
    assert final.read_text() == "kept"
    assert resume.remove_task_files(str(tmp_path / "missing"), lambda n: True) == []
