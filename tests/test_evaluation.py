"""Evaluation as a user runs it: during training (--val-zeroshot/--val-retrieval, --eval-every),
clip_benchmark's suite on a checkpoint (`mobileclip-fastload evaluate`), TensorBoard, the plot.

Numbers are checked against an independent computation: a model whose embeddings are known in
closed form (tests/known_embeddings.py), on small sets written in the real layouts."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("clip_benchmark")

import known_embeddings as known
from mobileclip_fastload.cli import main as cli_main
from mobileclip_fastload_train.checkpoint import save_checkpoint
from mobileclip_fastload_train.distributed import DistInfo
from mobileclip_fastload_train.eval_data import eval_transform, load_captions, load_class_folder
from mobileclip_fastload_train.validation import Validation


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _approx(expected: dict[str, float]):
    return pytest.approx(expected, abs=1e-6)  # float32 means; one miscount is >= 1/30


def test_training_evaluates_zero_shot_and_retrieval_and_logs(tmp_path, monkeypatch):
    """A tiny run with --eval-every: the eval records equal the independent numbers;
    TensorBoard events hold the training and evaluation scalars; the plot is drawn."""
    known.register(monkeypatch)
    colours, labels = known.make_class_folders(tmp_path / "val", n=23)
    r_colours, captions = known.make_captions(1, 11)
    captions_json = known.write_karpathy(tmp_path / "flickr", r_colours, captions)
    run = tmp_path / "run"
    from mobileclip_fastload_train.train import main as train_main

    train_main(
        [
            "--fake-data",
            "8",
            "--batch-size",
            "4",
            "--model",
            known.MODEL_NAME,
            "--steps",
            "3",
            "--eval-every",
            "2",
            "--lr",
            "0",
            "--warmup",
            "0",
            "--precision",
            "fp32",
            "--device",
            "cpu",
            "--log-every",
            "1",
            "--save-every",
            "0",
            "--no-progress",
            "--output",
            str(run),
            "--val-zeroshot",
            str(tmp_path / "val"),
            "--val-retrieval",
            str(captions_json),
            "--val-workers",
            "0",
            "--val-batch-size",
            "5",
            "--tensorboard",
        ]
    )

    evals = [r for r in _records(run) if any(k.startswith("eval/") for k in r)]
    assert [r["step"] for r in evals] == [2, 3]  # every --eval-every steps and at the end
    expected = {
        **{f"eval/zeroshot/{k}": v for k, v in known.expected_zero_shot(colours, labels).items()},
        **{f"eval/retrieval/{k}": v for k, v in known.expected_retrieval(r_colours, captions).items()},
    }
    for record in evals:
        assert {k: record[k] for k in expected} == _approx(expected)
    assert 0 < expected["eval/zeroshot/acc1"] < 1 and 0 < expected["eval/retrieval/image_retrieval_recall@1"] < 1

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in (
        "train/loss",
        "train/clip_loss",
        "train/kd_loss",
        "train/lr",
        "train/logit_scale",
        "train/samples_per_s",
        "train/data_s",
        "eval/zeroshot/acc1",
        "eval/retrieval/text_retrieval_recall@5",
    ):
        assert tag in tags, (tag, sorted(tags))
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert [e.value for e in events.Scalars("eval/zeroshot/acc1")] == pytest.approx(
        [expected["eval/zeroshot/acc1"]] * 2, abs=1e-6
    )

    assert cli_main(["plot", str(run)]) == 0
    png = (run / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


@pytest.mark.slow
def test_clip_benchmark_suite_end_to_end(tmp_path, monkeypatch, capsys):
    """`mobileclip-fastload evaluate` runs clip_benchmark on a checkpoint, on a local ImageNet-style
    folder (imagenet1k-unverified) and a local COCO captions set (mscoco_captions)."""
    known.register(monkeypatch)
    root = tmp_path / "datasets"
    colours, labels = known.make_class_folders(root / "imagenet1k-unverified" / "val", n=19, seed=3)
    classnames = tmp_path / "classnames.json"
    classnames.write_text(json.dumps({"imagenet1k-unverified": known.CLASSES}))
    r_colours, captions = known.make_captions(4, 12, captions_per_image=3)  # clip_benchmark needs k <= images
    annotations = tmp_path / "captions_val2014.json"
    known.write_coco(root / "mscoco_captions" / "val2014", annotations, r_colours, captions)
    ckpt = save_checkpoint(
        tmp_path / "ckpt", {"model": known.build_known_model().state_dict(), "model_name": known.MODEL_NAME, "step": 7}
    )
    out = tmp_path / "eval"

    assert (
        cli_main(
            [
                "evaluate",
                "--checkpoint",
                str(ckpt),
                "--dataset",
                "imagenet1k-unverified",
                "mscoco_captions",
                "--dataset-root",
                f"{root}/{{dataset}}",
                "--output",
                str(out),
                "--no-amp",
                "--num-workers",
                "0",
                "--batch-size",
                "4",
                "--custom_classname_file",
                str(classnames),
                "--annotation_file",
                str(annotations),
                "--quiet",
            ]
        )
        == 0
    )

    classification = json.loads((out / "imagenet1k-unverified_zeroshot_classification.json").read_text())
    zs = known.expected_zero_shot(colours, labels)
    assert {k: classification["metrics"][k] for k in zs} == _approx(zs)
    retrieval = json.loads((out / "mscoco_captions_zeroshot_retrieval.json").read_text())
    rt = known.expected_retrieval(r_colours, captions)
    assert retrieval["metrics"] == _approx(rt)

    rows = list(csv.DictReader((out / "summary.csv").open()))
    mean_r1 = (rt["image_retrieval_recall@1"] + rt["text_retrieval_recall@1"]) / 2
    assert [(r["dataset"], r["metric"]) for r in rows] == [
        ("imagenet1k-unverified", "acc1"),
        ("mscoco_captions", "mean_recall@1"),
        ("average", ""),
    ]
    assert [float(r["value"]) for r in rows] == pytest.approx([zs["acc1"], mean_r1, (zs["acc1"] + mean_r1) / 2])
    assert "average" in capsys.readouterr().out


def _sharded_worker(rank: int, world: int, init_file: str, root: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = known.build_known_model()
        transform = eval_transform(model.preprocess)
        validation = Validation(
            load_class_folder(Path(root) / "val", transform),
            load_captions(Path(root) / "flickr", Path(root) / "flickr" / "dataset_test.json", transform),
            batch_size=3,
            info=DistInfo(rank, world),
        )
        Path(out, f"{rank}.json").write_text(json.dumps(validation(model)))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_validation_sharded_over_two_gloo_ranks(tmp_path):
    """Each rank encodes its slice (uneven sizes); the gathered result is every rank's and equals
    the independent numbers."""
    colours, labels = known.make_class_folders(tmp_path / "val", n=17, seed=5)
    r_colours, captions = known.make_captions(6, 7, captions_per_image=3)
    known.write_karpathy(tmp_path / "flickr", r_colours, captions)
    torch.multiprocessing.spawn(
        _sharded_worker, args=(2, str(tmp_path / "init"), str(tmp_path), str(tmp_path)), nprocs=2
    )
    expected = {
        **{f"zeroshot/{k}": v for k, v in known.expected_zero_shot(colours, labels).items()},
        **{f"retrieval/{k}": v for k, v in known.expected_retrieval(r_colours, captions).items()},
    }
    for rank in range(2):
        assert json.loads((tmp_path / f"{rank}.json").read_text()) == _approx(expected)


def test_class_names_default_and_errors(tmp_path):
    for wnid in ("n01440764", "n01443537"):
        (tmp_path / "wn" / wnid).mkdir(parents=True)
        known._save_solid(tmp_path / "wn" / wnid / "a.png", torch.tensor([1, 2, 3]).numpy())
    with pytest.raises(ValueError, match="WordNet-id folders"):
        load_class_folder(tmp_path / "wn", lambda im: im)
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"n01440764": "tench", "n01443537": "goldfish"}))
    assert load_class_folder(tmp_path / "wn", lambda im: im, names).class_names == ["tench", "goldfish"]
    names.write_text(json.dumps(["tench"]))
    with pytest.raises(ValueError, match="1 class names for 2 class folders"):
        load_class_folder(tmp_path / "wn", lambda im: im, names)


def test_captions_json_errors_name_the_file_and_image(tmp_path):
    colours, captions = known.make_captions(0, 3)
    path = known.write_karpathy(tmp_path, colours, captions)
    assert len(load_captions(tmp_path, path, lambda im: im).images) == 3  # the train-split image left out
    os.remove(tmp_path / "images" / "001.jpg.png")
    with pytest.raises(FileNotFoundError, match=r"dataset_test.json: image .*001.jpg.png not found"):
        load_captions(tmp_path, path, lambda im: im)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"annotations_missing": []}))
    with pytest.raises(ValueError, match="neither a Karpathy split file nor a COCO captions file"):
        load_captions(tmp_path, bad, lambda im: im)


def test_wandb_flag_without_wandb_is_a_clear_error(tmp_path):
    if __import__("importlib").util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    from mobileclip_fastload_train.train import main as train_main

    with pytest.raises(SystemExit, match="--wandb needs the wandb package"):
        train_main(
            [
                "--fake-data",
                "4",
                "--batch-size",
                "2",
                "--model",
                "tiny-S0",
                "--steps",
                "1",
                "--device",
                "cpu",
                "--no-progress",
                "--output",
                str(tmp_path),
                "--wandb",
                "proj",
            ]
        )
