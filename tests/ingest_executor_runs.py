"""The runs the executor tests compare, importable by the test, and run as a script in a fresh process
(``python tests/ingest_executor_runs.py TOOL EXECUTOR OUT CONFIGS INPUT...``, under
``python -m torch.distributed.run --nproc-per-node=2`` for torchrun)."""

from __future__ import annotations

import os
import sys


def tiny_models(configs: str):
    """The tiny random-init captioner and teachers whose configs ``write_tiny_configs`` put in ``configs``."""
    from mobileclip_fastload.reinforce import OpenClipSpec

    def spec(name: str, seed: int) -> OpenClipSpec:
        return OpenClipSpec(name, None, os.path.join(configs, f"{name}.json"), init_seed=seed)

    return spec("tiny-coca", 1), (spec("tiny-clip-a", 2), spec("tiny-clip-b", 3))


def run_convert(inputs, out, executor: str, **kw):
    from mobileclip_fastload.convert import convert

    return convert(inputs, out, executor=executor, progress=False, **kw)


def run_reinforce(inputs, out, executor: str, configs: str, **kw):
    """One thread per worker everywhere: the same float arithmetic on every executor."""
    from mobileclip_fastload.reinforce import OpenClipCaptioner, reinforce

    coca, teachers = tiny_models(configs)
    return reinforce(
        inputs,
        out,
        teachers=teachers,
        captioners=[OpenClipCaptioner(coca, tag="tiny", num_captions=2, seq_len=8)],
        num_augmentations=2,
        seed=11,
        num_threads=1,
        batch_augmented_images=8,
        device="cpu",
        executor=executor,
        progress=False,
        **kw,
    )


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    tool, executor, out, configs, *inputs = sys.argv[1:]
    if tool == "convert":
        run_convert(inputs, out, executor)
    else:
        run_reinforce(inputs, out, executor, configs)
