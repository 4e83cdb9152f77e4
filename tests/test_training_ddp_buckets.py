"""Under DDP (``gradient_as_bucket_view=True``) the loop keeps every gradient a view of its
bucket between steps: zeroed in place, never set to None (a gradient set to None is made anew by
autograd and copied into the bucket at every backward). Two gloo processes on the CPU."""

from __future__ import annotations

import os
import socket
import tempfile

import pytest
import torch
import torch.multiprocessing as mp
from mobileclip_fastload_train.data import random_reinforced_source
from mobileclip_fastload_train.distributed import DistInfo
from mobileclip_fastload_train.models import create_model
from mobileclip_fastload_train.train import TrainConfig, train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = create_model("tiny-S0", image_size=32, text_width=32, embed_dim=32)
        source = random_reinforced_source(16, batch_size=4, image_size=32, seed=1, rank=rank, world_size=world)
        cfg = TrainConfig(steps=2, warmup=1, precision="fp32", progress=False, log_every=2, num_teachers=2)
        train(cfg, model, source, DistInfo(rank, world, 0, torch.device("cpu")))
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        storages = {g.untyped_storage().data_ptr() for g in grads if g is not None}
        torch.save(
            {
                "params": len(grads),
                "none": sum(g is None for g in grads),
                "storages": len(storages),
                "nonzero": sum(int(g.count_nonzero()) for g in grads if g is not None),
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # two processes starting torch: ~20-60 s on a small shared machine
def test_ddp_gradients_stay_bucket_views_between_steps():
    world = 2
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_rank, args=(world, _free_port(), out_dir), nprocs=world, join=True)
        ranks = [torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in range(world)]
    for r in ranks:
        assert r["none"] == 0, f"{r['none']} of {r['params']} gradients were set to None"
        assert r["storages"] < r["params"] / 4, f"{r['storages']} storages for {r['params']} gradients: not buckets"
        assert r["nonzero"] == 0  # zeroed after the last step
