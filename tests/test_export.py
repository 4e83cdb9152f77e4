"""`mobileclip-fastload export`: the exported graphs compute what PyTorch computes.

ONNX Runtime runs the exported encoders on random inputs and on photographs / real captions
(preprocessed as runtime.json says) and is compared with the train-time PyTorch model in eval
mode; the Core ML packages are checked by their spec (running one needs macOS). Models are
random-init with non-trivial BatchNorm statistics, so that folding is exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("timm")
pytest.importorskip("open_clip")

from mobileclip_fastload.cli import main
from mobileclip_fastload.sample_photos import NAMES, load
from mobileclip_fastload.tokenizer import tokenize
from mobileclip_fastload_train.checkpoint import save_checkpoint
from mobileclip_fastload_train.export import (
    FORMATS,
    PRECISIONS,
    example_image,
    example_tokens,
    export_model,
)
from mobileclip_fastload_train.models import CLIPModel, create_model

#: fp32 graphs against PyTorch, on L2-normalised embeddings (the brief's bound)
FP32_TOLERANCE = 1e-4
#: fp16 ONNX graphs (weights and activations fp16, inputs/outputs fp32): smallest cosine with fp32 PyTorch
FP16_MIN_COSINE = 0.999
CAPTIONS = [
    "a photo of an astronaut",
    "a cat lying on a blanket",
    "a cup of coffee on a saucer",
    "the hubble deep field",
    "a rocket on the launch pad at night, seen from far away",
]


def _trained_like(name: str, seed: int = 0) -> CLIPModel:
    """A random-init model whose BatchNorm statistics and affines are not the identity (as after training)."""
    torch.manual_seed(seed)
    model = create_model(name)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        model.logit_scale.fill_(np.log(50.0))
    return model.eval()


def _checkpoint(tmp_path: Path, model: CLIPModel) -> Path:
    return save_checkpoint(tmp_path / "run", {"model": model.state_dict(), "step": 3})


def _photos(config: dict) -> torch.Tensor:
    """The sample photographs preprocessed as runtime.json tells a runtime to."""
    from PIL import Image
    from torchvision.transforms import v2

    image = config["image"]
    transform = v2.Compose(
        [
            v2.Resize(image["image_size"], interpolation=getattr(v2.InterpolationMode, image["interpolation"].upper())),
            v2.CenterCrop(image["image_size"]),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(image["mean"], image["std"]),
        ]
    )
    return torch.stack([transform(Image.fromarray(load(n)).convert("RGB")) for n in NAMES])


def _captions(config: dict) -> torch.Tensor:
    context = config["text"]["context_length"]
    tokens = torch.zeros(len(CAPTIONS), context, dtype=torch.long)
    for row, caption in enumerate(CAPTIONS):
        ids = tokenize(caption, context)
        tokens[row, : len(ids)] = torch.from_numpy(ids.astype(np.int64))
    return tokens


def _onnx_vs_torch(model: CLIPModel, out: Path, precision: str) -> dict[str, float]:
    """Largest |difference| (fp32) or smallest cosine (fp16) per tower and input kind."""
    ort = pytest.importorskip("onnxruntime")
    config = json.loads((out / "runtime.json").read_text())
    inputs = {
        "image": {"random": example_image(model, 3, seed=1), "photos": _photos(config)},
        "text": {"random": example_tokens(model, 3, seed=1), "captions": _captions(config)},
    }
    results = {}
    for tower, encode in (("image", model.encode_image), ("text", model.encode_text)):
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, f"ORT_ENABLE_{config['onnxruntime_graph_optimization'].upper()}"
        )
        session = ort.InferenceSession(str(out / config[tower]["file"]), options, providers=["CPUExecutionProvider"])
        for kind, x in inputs[tower].items():
            (got,) = session.run([config[tower]["output"]], {config[tower]["input"]: x.numpy()})
            with torch.no_grad():
                want = encode(x).numpy()
            assert got.shape == want.shape == (len(x), config["embedding_dim"])
            if precision == "fp32":
                results[f"{tower}/{kind}"] = float(np.abs(got - want).max())
            else:
                # fp16's output is unit-norm only to fp16 precision: a true cosine
                cosine = (got * want).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
                results[f"{tower}/{kind}"] = float(cosine.min())
    return results


_EXPORTS: dict[tuple[str, str, str], tuple[CLIPModel, Path]] = {}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """``exported(name, fmt, precision)``: the model and its export directory, made once per module."""

    def get(name: str, fmt: str, precision: str) -> tuple[CLIPModel, Path]:
        pytest.importorskip("onnx" if fmt == "onnx" else "coremltools")
        key = (name, fmt, precision)
        if key not in _EXPORTS:
            tmp = tmp_path_factory.mktemp("export")
            model = _trained_like(name)
            export_model(_checkpoint(tmp, model), name, tmp / "out", fmt, precision)
            _EXPORTS[key] = model, tmp / "out"
        return _EXPORTS[key]

    yield get
    _EXPORTS.clear()


def _check_onnx(exported, name: str, precision: str) -> None:
    model, out = exported(name, "onnx", precision)
    results = _onnx_vs_torch(model, out, precision)
    print(name, precision, results)  # the measured bounds (pytest -s)
    if precision == "fp32":
        assert max(results.values()) < FP32_TOLERANCE, results
    else:
        assert min(results.values()) > FP16_MIN_COSINE, results


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", ["tiny-S0", "tiny-S1"])  # MCt text tower / open_clip's text tower
def test_onnx_matches_pytorch(exported, name: str, precision: str) -> None:
    _check_onnx(exported, name, precision)


@pytest.mark.heavy
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", ["MobileCLIP-S0", "MobileCLIP-S1"])  # full-size MCi0 + MCt / MCi1 + open_clip text
def test_onnx_matches_pytorch_full_size(exported, name: str, precision: str) -> None:
    _check_onnx(exported, name, precision)


def test_runtime_json_states_the_models_preprocessing(exported) -> None:
    model, out = exported("tiny-S0", "onnx", "fp32")
    path = out / "runtime.json"
    config = json.loads(path.read_text())
    pre = model.preprocess
    assert (config["model"], config["format"], config["precision"]) == ("tiny-S0", "onnx", "fp32")
    assert config["image"]["image_size"] == pre.image_size
    assert (config["image"]["mean"], config["image"]["std"]) == (list(pre.mean), list(pre.std))
    assert config["text"]["context_length"] == pre.context_length
    assert config["embedding_dim"] == model.visual(example_image(model)).shape[-1]
    assert config["logit_scale"] == pytest.approx(50.0)
    assert sorted(p.name for p in path.parent.iterdir()) == ["image_encoder.onnx", "runtime.json", "text_encoder.onnx"]


def _feature(description, name: str):
    (feature,) = [f for f in description if f.name == name]
    return feature.type.multiArrayType


# fp16 is what ships to a phone (slow: out of the developer loop); fp32 is the same conversion path: heavy
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", pytest.param("fp32", marks=pytest.mark.heavy)])
def test_coreml_package_has_the_expected_inputs_and_outputs(exported, precision: str) -> None:
    ct = pytest.importorskip("coremltools")
    from coremltools.proto import FeatureTypes_pb2

    _, out = exported("tiny-S0", "coreml", precision)
    config = json.loads((out / "runtime.json").read_text())
    array = FeatureTypes_pb2.ArrayFeatureType
    float_type = array.FLOAT16 if precision == "fp16" else array.FLOAT32
    size, context = config["image"]["image_size"], config["text"]["context_length"]
    for tower, shape, input_type in (("image", [1, 3, size, size], array.FLOAT32), ("text", [1, context], array.INT32)):
        spec = ct.models.MLModel(str(out / config[tower]["file"]), skip_model_load=True).get_spec()
        assert spec.WhichOneof("Type") == "mlProgram"
        assert [f.name for f in spec.description.input] == [config[tower]["input"]]
        assert [f.name for f in spec.description.output] == [config[tower]["output"]]
        given = _feature(spec.description.input, config[tower]["input"])
        assert (list(given.shape), given.dataType) == (shape, input_type)
        batch = given.shapeRange.sizeRanges[0]
        assert (batch.lowerBound, batch.upperBound) == (1, 64)  # a dynamic batch axis
        assert _feature(spec.description.output, config[tower]["output"]).dataType == float_type


def test_cli_exports_and_names_a_checkpoint_that_does_not_fit(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    checkpoint = _checkpoint(tmp_path, _trained_like("tiny-S0"))
    out = tmp_path / "export"
    assert main(["export", str(checkpoint), "--model", "tiny-S0", "--format", "onnx", "-o", str(out)]) == 0
    assert (out / "runtime.json").is_file()
    assert main(["export", str(checkpoint), "--model", "tiny-S1", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert str(checkpoint) in err and "does not fit tiny-S1" in err
    assert main(["export", str(tmp_path / "absent.pt"), "--model", "tiny-S0", "-o", str(tmp_path / "y")]) == 2
    assert "absent.pt" in capsys.readouterr().err


def test_cli_choices_are_the_exporters() -> None:
    from mobileclip_fastload.cli import build_parser

    parser = build_parser()
    export = parser._subparsers._group_actions[0].choices["export"]  # type: ignore[union-attr]
    choices = {a.dest: tuple(a.choices) for a in export._actions if a.choices}
    assert choices == {"format": FORMATS, "precision": PRECISIONS}


@pytest.mark.parametrize("layout", ["training", "open_clip_ddp", "state_dict"])
def test_checkpoint_layouts_load_and_fold(tmp_path: Path, layout: str) -> None:
    from mobileclip_fastload_train.export import load_for_export

    model = _trained_like("tiny-S1")
    state = model.state_dict()
    saved = {
        "training": {"model": state, "step": 1},
        "open_clip_ddp": {"epoch": 1, "state_dict": {f"module.{k}": v for k, v in state.items()}},
        "state_dict": state,
    }[layout]
    path = tmp_path / "ckpt.pt"
    torch.save(saved, path)
    folded = load_for_export(path, "tiny-S1")
    image, tokens = example_image(model, 2), example_tokens(model, 2)
    with torch.no_grad():
        assert torch.allclose(folded.encode_image(image), model.encode_image(image), atol=1e-5)
        assert torch.equal(folded.encode_text(tokens), model.encode_text(tokens))
    # folded: MobileOne's train-time conv+BN branches are gone, one reparam_conv each instead
    names = [n for n, _ in folded.named_modules()]
    assert not any("conv_kxk" in n for n in names) and any(n.endswith("reparam_conv") for n in names)
    assert not folded.training
