"""One encoder to one ONNX graph with a dynamic batch axis.

torch's TorchScript-based exporter is used (``dynamo=False``): it needs no package beyond
``onnx`` and exports these towers in seconds. fp16 exports the encoder cast to float16 by torch
(LayerNorms stay float32, as in training), with float32 image input and embedding output, so one
runtime code path serves both precisions. (ONNX Runtime's float16 graph converter was tried:
its graphs fail ``onnx.checker``, nodes not topologically sorted.)
"""

from __future__ import annotations

import copy
import os
import warnings

import torch
from torch import nn


class _Float16(nn.Module):
    """``encoder`` in float16 between a float32 (or integer) input and a float32 output."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(encoder).half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.half() if x.is_floating_point() else x).float()


#: ONNX opset of the exported graphs (onnxruntime >= 1.14 runs it).
OPSET = 17


def export_onnx(
    encoder: nn.Module,
    example: torch.Tensor,
    input_name: str,
    output_name: str,
    path: str | os.PathLike[str],
    precision: str = "fp32",
) -> None:
    import onnx

    if precision == "fp16":
        encoder = _Float16(encoder)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # nn.MultiheadAttention's inference fast path (a fused op ONNX has no export for) off while tracing
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the tracer warns about Python-side checks (sequence length, shapes) that are constant per model
            warnings.simplefilter("ignore")
            torch.onnx.export(
                encoder.eval(),
                (example,),
                str(path),
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    onnx.checker.check_model(str(path))
