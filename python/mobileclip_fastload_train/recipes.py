"""Named presets of training values (``python -m mobileclip_fastload_train.train --recipe NAME``).

A recipe sets command-line defaults; a flag given on the command line wins. Keys are the
``mobileclip_fastload_train.train`` argument names (argparse ``dest``).
"""

from __future__ import annotations

from typing import Any

#: Apple's MobileCLIP2 recipe (ml-mobileclip ``training/configs/run_dfndr2b.sh`` and
#: ``run_dfndr12m.sh``): distillation only (``--distill-loss-weights 0.0 1.0``), the DFN
#: teachers' logit scales 70 and 60 (``--distill-logit-scale 70. 60.``), real- and
#: synthetic-caption losses summed, AdamW beta2 0.95, weight decay 0.2, lr 1e-3, warmup
#: 1000 steps, gradient clip 1.0. Apple's scripts say ``--precision amp``; bf16 autocast
#: is this loop's mixed precision (what the MobileCLIP2 paper trains with).
#: The step count is the data's (DFNDR-12M ablations: 30k at batch 8,192; DFNDR-2B: 200k
#: at 65,536): give ``--steps``.
RECIPES: dict[str, dict[str, Any]] = {
    "mobileclip2": {
        "lam": 1.0,
        "teacher_logit_scale": [70.0, 60.0],
        "loss_captions": "both",
        "lr": 1e-3,
        "beta2": 0.95,
        "wd": 0.2,
        "warmup": 1000,
        "grad_clip": 1.0,
        "precision": "bf16",
    },
}


def describe(name: str, values: dict[str, Any]) -> str:
    """One line naming the recipe's values as they stand, and which the command line overrode."""
    preset = RECIPES[name]
    parts = [f"{k}={values[k]!r}" + ("" if values[k] == v else f" (recipe: {v!r})") for k, v in preset.items()]
    return f"recipe {name}: " + ", ".join(parts)
