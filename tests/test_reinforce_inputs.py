"""Reinforcement inputs without any model: caption tables (JSONL) split into tasks, and
`prepare_sample`'s checks and replays (each skip with its reason)."""

import json

import numpy as np
import pytest
from mobileclip_fastload.ingest.options import Dims
from mobileclip_fastload.ingest.skips import SkipSample
from mobileclip_fastload.reference import reference_replay
from mobileclip_fastload.reinforce.captioners import Captioner, OpenClipCaptioner
from mobileclip_fastload.reinforce.inputs import TableSampleReader, make_tasks
from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec
from mobileclip_fastload.reinforce.options import ReinforceOptions
from mobileclip_fastload.reinforce.prepare import prepare_sample
from mobileclip_fastload.testing.synthetic_store import photo_jpeg


class PixelsCaptioner(Captioner):
    """The plug-in interface's defaults: ``prepare`` hands Pillow's RGB pixels to ``caption``."""

    tag, num_captions = "pixels", 1

    def fingerprint(self) -> dict:
        return {"kind": "pixels"}

    def caption(self, images, seeds, device):
        return [[f"{im.shape}"] for im in images]


OPTS = ReinforceOptions(
    dims=Dims(4, 1, 1, 1), seed=3, teachers=(OpenClipSpec("unused"),), captioners=(OpenClipCaptioner(),)
)


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    lines = []
    for i in range(5):
        jpeg, _, _ = photo_jpeg(rng, min_side=40, max_side=90)
        (tmp_path / "img" / f"{i}.jpg").write_bytes(jpeg)
        lines.append(json.dumps({"image": f"img/{i}.jpg", "caption": f"photo {i}", "url": f"http://x/{i}"}))
    lines[1] = json.dumps({"image": "img/1.jpg", "caption": ""})  # empty caption
    lines.insert(2, "{not json")
    lines.insert(3, json.dumps(["an", "array"]))
    lines.append(json.dumps({"image": "img/none.jpg", "caption": "gone", "uid": "u-gone"}))
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n\n")
    return tmp_path / "pairs.jsonl"


def test_jsonl_table_tasks_and_skips(table, tmp_path):
    tasks = make_tasks([str(table)], str(tmp_path / "out"), rows_per_shard=3)
    assert [(t.task_id, t.row_start, t.row_stop) for t in tasks] == [
        ("pairs-00000", 0, 3),
        ("pairs-00001", 3, 6),
        ("pairs-00002", 6, 8),
    ]
    outcomes = []
    for t in tasks:
        for raw in TableSampleReader(t.input, t.row_start, t.row_stop, None):
            try:
                s = prepare_sample(raw, OPTS, [(24, "bicubic")], captioners=())
                outcomes.append(("ok", s.uid))
            except SkipSample as e:
                outcomes.append((e.reason, raw.key))
    assert outcomes == [
        ("ok", "img/0.jpg"),
        ("empty_caption", "row00000001"),
        ("bad_json", "row00000002"),
        ("bad_json", "row00000003"),
        ("ok", "img/2.jpg"),
        ("ok", "img/3.jpg"),
        ("ok", "img/4.jpg"),
        ("missing_image", "row00000007"),
    ]


def test_prepared_pixels_are_reference_replays_of_the_stored_records(table):
    raw = next(iter(TableSampleReader(str(table), 0, 1, None)))
    s = prepare_sample(raw, OPTS, [(24, "bicubic"), (20, "bilinear")], captioners=[PixelsCaptioner()])
    assert s.aug.shape == (4,) and s.caption_inputs["pixels"].shape == (s.height, s.width, 3)
    for (size, interpolation), pixels in s.pixels.items():
        for j in range(4):
            np.testing.assert_array_equal(pixels[j], reference_replay(s.stored_image, s.aug[j], size, interpolation))
    assert s.url == "http://x/0"


def test_too_small_images_are_skipped(tmp_path):
    rng = np.random.default_rng(1)
    jpeg, _, _ = photo_jpeg(rng, min_side=8, max_side=12)
    (tmp_path / "tiny.jpg").write_bytes(jpeg)
    (tmp_path / "t.jsonl").write_text(json.dumps({"image": "tiny.jpg", "caption": "small"}) + "\n")
    raw = next(iter(TableSampleReader(str(tmp_path / "t.jsonl"), 0, None, None)))
    with pytest.raises(SkipSample) as e:
        prepare_sample(raw, OPTS, [], captioners=())
    assert e.value.reason == "image_too_small"
