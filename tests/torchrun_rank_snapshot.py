"""torchrun entry point for ``test_training_loop.py::test_torchrun_two_cpu_processes``.

Runs ``mobileclip_fastload_train.train.main`` with the command-line arguments unchanged, then
every rank writes its own parameters and loss history to
``<--output>/rank<r>.pt``: the checkpoint only holds rank 0's model, and
``metrics.jsonl`` only rank 0's losses, so neither can show whether the ranks
stayed in sync.
"""

from __future__ import annotations

import os
import sys

import mobileclip_fastload_train.train as train_module
import torch


def main(argv: list[str]) -> None:
    built = []
    create_model = train_module.create_model

    def create_and_keep(*args, **kwargs):
        model = create_model(*args, **kwargs)
        built.append(model)
        return model

    train_module.create_model = create_and_keep  # main builds the model itself: keep a handle on it
    result = train_module.main(argv)
    (model,) = built
    out = argv[argv.index("--output") + 1]
    torch.save(
        {
            "params": {n: p.detach().clone() for n, p in model.named_parameters()},
            "losses": [r["loss"] for r in result.history if "loss" in r],
        },
        os.path.join(out, f"rank{os.environ['RANK']}.pt"),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
