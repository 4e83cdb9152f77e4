"""One encoder to one Core ML ML program (``.mlpackage``) with a batch axis of 1..MAX_BATCH.

coremltools converts on Linux; running (or compiling) the package needs macOS. The model
goes through ``torch.export``: coremltools' TorchScript frontend fails on these towers'
shape arithmetic with NumPy 2 ("only 0-dimensional arrays can be converted to Python scalars").
Token ids are int32 in Core ML (it has no int64 inputs).
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

MAX_BATCH = 64
#: iOS 16 / macOS 13: the first ML program target with fp16 inputs and outputs
DEPLOYMENT_TARGET = "iOS16"


def export_coreml(
    encoder: nn.Module, example: torch.Tensor, output_name: str, path: str | os.PathLike[str], precision: str = "fp32"
) -> None:
    import coremltools as ct

    if not example.is_floating_point():
        example = example.to(torch.int32)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.export.export(encoder.eval(), (example,), dynamic_shapes=({0: batch},))
        program = program.run_decompositions({})
        mlmodel = ct.convert(
            program,
            outputs=[ct.TensorType(name=output_name)],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
            minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
        )
    mlmodel.save(str(path))
