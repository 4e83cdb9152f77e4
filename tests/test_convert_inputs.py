"""Input resolution: brace patterns, task ids, WebDataset key/extension split, image-shard pairing."""

import pytest
from mobileclip_fastload.ingest.inputs import expand_braces, expand_inputs, pair_image_shards, task_ids
from mobileclip_fastload.ingest.tar_samples import split_name


def test_expand_braces():
    assert expand_braces("s/{00000000..00000002}.tar") == ["s/00000000.tar", "s/00000001.tar", "s/00000002.tar"]
    assert expand_braces("{8..10}") == ["8", "9", "10"]
    assert expand_braces("{3..1}") == ["3", "2", "1"]
    assert expand_braces("{0..6..3}") == ["0", "3", "6"]
    assert expand_braces("a{b,c{d,e}}f") == ["abf", "acdf", "acef"]
    assert expand_braces("{a,b}/{1..2}") == ["a/1", "a/2", "b/1", "b/2"]
    assert expand_braces("x{y}z") == ["x{y}z"]
    # Unbalanced braces are a literal path (reported later if it does not exist), never an exception.
    for bad in ("open{", "a}b", "s/{0..3.tar", "{a,b}}"):
        assert expand_braces(bad) == [bad]
    # Backslashes are path characters, not escapes.
    assert expand_braces("d\\{1..2}.tar") == ["d\\1.tar", "d\\2.tar"]


def test_expand_inputs_folders_globs_duplicates(tmp_path):
    for n in ("b.tar", "a.tar", "c.txt"):
        (tmp_path / n).write_bytes(b"")
    folder = [str(tmp_path / "a.tar"), str(tmp_path / "b.tar")]
    assert expand_inputs(tmp_path) == folder
    assert expand_inputs(str(tmp_path / "*.tar")) == folder
    assert expand_inputs([str(tmp_path / "{a,b,a}.tar"), str(tmp_path / "b.tar")]) == folder
    assert expand_inputs(str(tmp_path / "missing.tar")) == [
        str(tmp_path / "missing.tar")
    ]  # reported later, not dropped


def test_task_ids_are_unique_and_file_name_safe():
    assert task_ids(["d/00000001.tar", "d/00000002.tar"]) == ["00000001", "00000002"]
    assert task_ids(["/x/00/0000.tar", "/x/01/0000.tar"]) == ["00__0000", "01__0000"]
    assert task_ids(["/x/we ird:name.tar"]) == ["we_ird_name"]


def test_split_name_follows_webdataset():
    assert split_name("dir/abc.syn.json") == ("dir/abc", "syn.json")
    assert split_name("a.b/c.JPG") == ("a.b/c", "jpg")
    assert split_name("000123.pth.gz") == ("000123", "pth.gz")
    assert split_name("noext") is None


def test_pairing():
    assert pair_image_shards(["dr/1.tar", "dr/0.tar"], ["im/0.tar", "im/1.tar"]) == ["im/1.tar", "im/0.tar"]
    assert pair_image_shards(["dr/x.tar", "dr/y.tar"], ["im/0.tar", "im/1.tar"]) == ["im/0.tar", "im/1.tar"]
    with pytest.raises(ValueError, match="cannot pair"):
        pair_image_shards(["dr/x.tar", "dr/y.tar"], ["im/0.tar"])
