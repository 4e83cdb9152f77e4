"""What a reinforcement chunk holds and what a captioning pass records: chunks are sized in augmented
images (J = 2 still feeds the teachers big batches), a captioner's ``images_per_call`` is never cut
by the chunk, and the captioning fingerprint names the device type, GPU model and precision (a resumed
pass must not mix CPU-fp32 and GPU-bf16 captions)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mobileclip_fastload.ingest.options import Dims
from mobileclip_fastload.reinforce import reinforce
from mobileclip_fastload.reinforce.captioners import Captioner, OpenClipCaptioner
from mobileclip_fastload.reinforce.open_clip_models import OpenClipSpec
from mobileclip_fastload.reinforce.options import DEFAULT_BATCH_AUGMENTED_IMAGES, ReinforceOptions
from mobileclip_fastload.testing.image_text_pairs import make_pair_shards
from mobileclip_fastload.testing.tiny_models import tiny_specs


def options(J: int, captioner: Captioner | None = None, **kw) -> ReinforceOptions:
    return ReinforceOptions(
        dims=Dims(J, 1, 1, 1),
        seed=0,
        teachers=(OpenClipSpec("unused"),),
        captioners=(captioner or OpenClipCaptioner(),),
        **kw,
    )


def test_chunks_are_counted_in_augmented_images():
    assert DEFAULT_BATCH_AUGMENTED_IMAGES == 480
    assert options(30).images_per_chunk == 16  # DataCompDR: 16 images x 30
    assert options(2).images_per_chunk == 240  # DFNDR: 240 images x 2, not 16 x 2
    assert options(1000).images_per_chunk == 1
    assert options(30, OpenClipCaptioner(images_per_call=64)).images_per_chunk == 64  # never cut to 16


class ChunkRecorder(Captioner):
    """A real plug-in captioner that remembers how many images each call got (one call per chunk)."""

    tag, num_captions = "recorder", 1

    def __init__(self):
        self.calls: list[int] = []

    def fingerprint(self) -> dict:
        return {"kind": "recorder"}

    def caption(self, images, seeds, device):
        self.calls.append(len(images))
        return [["a photo"] for _ in images]


@pytest.mark.parametrize(("J", "chunks"), [(2, [4, 2]), (4, [2, 2, 2])])
def test_a_run_embeds_chunks_of_batch_augmented_images(tmp_path, J, chunks, one_torch_thread):
    _, (teacher, _) = tiny_specs(tmp_path / "configs")
    shards = make_pair_shards(tmp_path / "pairs", num_shards=1, samples_per_shard=6, seed=2)
    recorder = ChunkRecorder()
    report = reinforce(
        shards,
        tmp_path / "store",
        teachers=[teacher],
        captioners=[recorder],
        num_augmentations=J,
        batch_augmented_images=8,
        device="cpu",
        num_threads=1,
        progress=False,
    )
    assert recorder.calls == chunks and report.as_dict()["augmented_images"] == 6 * J


def test_the_captioning_fingerprint_names_device_precision_and_chunk():
    fp = options(4, device="cpu").captions_fingerprint()
    assert fp["caption_device"] == {"type": "cpu", "torch": torch.__version__}
    assert fp["caption_precision"] == ["fp32"] and fp["images_per_chunk"] == 120
    bf16 = options(4, OpenClipCaptioner(precision="bf16"), device="cpu").captions_fingerprint()
    assert bf16["caption_precision"] == ["bf16"] and bf16 != fp


def test_coca_defaults_on_cuda_generate_a_chunk_per_call_in_fp32():
    c = OpenClipCaptioner()
    assert c.resolved_precision("cuda:0") == "fp32"  # launch-bound anyway; bf16 logits quantise top-p
    assert c.images_per_call_on("cuda:0", 16) == 16 and c.images_per_call_on("cpu", 16) == 1
    assert OpenClipCaptioner(images_per_call=4).images_per_call_on("cuda:1", 16) == 4
    with pytest.raises(ValueError, match="images_per_call"):
        OpenClipCaptioner(images_per_call=-1)


def test_a_resumed_captioning_pass_redoes_shards_captioned_on_another_device(tmp_path, one_torch_thread):
    """The done record's captioning fingerprint names the device: a pass resumed elsewhere does not keep
    (and mix in) another device's shards; an embedding pass still joins a finished pass from anywhere."""
    import json

    from mobileclip_fastload.reinforce.resume import done_record_path

    _, (teacher, _) = tiny_specs(tmp_path / "configs")
    shards = make_pair_shards(tmp_path / "pairs", num_shards=1, samples_per_shard=2, seed=6)
    kw = dict(
        teachers=[teacher],
        captioners=[ChunkRecorder()],
        num_augmentations=1,
        device="cpu",
        num_threads=1,
        progress=False,
    )
    reinforce(shards, tmp_path / "store", stage="captions", **kw)
    record_path = done_record_path(str(tmp_path / "store"), "00000", "captions")
    record = json.loads(Path(record_path).read_text())
    assert record["fingerprint"]["options"]["caption_device"]["type"] == "cpu"
    record["fingerprint"]["options"]["caption_device"] = {"type": "cuda", "gpu": "NVIDIA H100 80GB HBM3"}
    Path(record_path).write_text(json.dumps(record))  # as if a GPU machine had captioned this shard
    joined = ChunkRecorder()
    reinforce(shards, tmp_path / "store", **{**kw, "captioners": [joined]})
    assert joined.calls == []  # the embedding pass joined the GPU-made captions
    again = reinforce(shards, tmp_path / "store", stage="captions", **kw)
    assert [s.status for s in again.shards] == ["converted"]  # not resumed: captioned again on this device
