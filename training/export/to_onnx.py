"""One encoder to one ONNX graph with a dynamic batch axis.

torch's TorchScript-based exporter is used (``dynamo=False``): it needs no package beyond
``onnx`` and exports these towers in seconds; fp16 is ONNX Runtime's own float16 conversion
of the fp32 graph, inputs and outputs kept float32 / int64 so one runtime code path serves both.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

#: ONNX opset of the exported graphs (onnxruntime >= 1.14 runs it).
OPSET = 17


def export_onnx(encoder: nn.Module, example: torch.Tensor, input_name: str, output_name: str,
                path: str | os.PathLike[str], precision: str = "fp32") -> None:
    import onnx

    with warnings.catch_warnings(), torch.no_grad():
        # the tracer warns about Python-side checks (sequence length, shapes) that are constant per model
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder.eval(), (example,), str(path), input_names=[input_name], output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}}, opset_version=OPSET,
            dynamo=False,
        )
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        graph = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
        onnx.save(graph, str(path))
    onnx.checker.check_model(str(path))
