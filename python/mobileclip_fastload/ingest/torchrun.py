"""``executor="torchrun"``: this process is one rank of ``torchrun --nproc-per-node=G``.

Rank r takes every world-th task (``Ranks.mine``), runs its share inline, and the ranks' shard
reports are gathered on every rank over gloo (it carries Python objects, with or without NCCL);
rank 0 alone writes the manifest and the report. Device placement (a rank's GPU) is the tool's
(reinforce's ``devices``): ``join`` only makes the group.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
#: how long a rank that finished its shards waits for the others in the report gather (ranks finish at
#: different times: one slow shard is minutes to hours behind; gloo's default is 30 minutes)
GATHER_TIMEOUT_S = 24 * 3600


@dataclass
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    owns_group: bool = field(default=False, repr=False, compare=False)  # join() made it: leave() ends it

    @classmethod
    def of(cls, executor: str) -> Ranks:
        """torchrun's RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE for ``executor="torchrun"``; else one rank."""
        if executor != "torchrun":
            return cls()
        env = os.environ
        world = int(env.get("WORLD_SIZE", 1))
        return cls(
            int(env.get("RANK", 0)), world, int(env.get("LOCAL_RANK", 0)), int(env.get("LOCAL_WORLD_SIZE", world))
        )

    @property
    def writes_store(self) -> bool:
        """Whether this rank writes the manifest and the report (rank 0, once all ranks finished)."""
        return self.rank == 0

    def mine(self, tasks: Sequence[T]) -> list[T]:
        """This rank's share of the tasks: every world-th one, starting at its rank."""
        return list(tasks[self.rank :: self.world])

    def join(self) -> None:
        """Make the ranks' group for the report gather, unless the caller made one (before the work: a rank
        that finishes early then waits within a timeout we chose)."""
        if self.world <= 1:
            return
        from datetime import timedelta

        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=timedelta(seconds=GATHER_TIMEOUT_S))
            self.owns_group = True

    def barrier(self) -> None:
        """Wait for every rank (after each checked and prepared the output folder, before any writes in it)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def leave(self) -> None:
        """End the group ``join`` made (a rank exiting with a live gloo group aborts: its threads are still
        running); a caller's own group is left to the caller."""
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False

    def gather(self, local: dict) -> dict:
        """All ranks' ``{task index: report}`` on every rank; the last collective: the group ``join`` made is
        ended here."""
        if self.world <= 1:
            return local
        import torch.distributed as dist

        gathered: list = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, local)
        self.leave()
        out: dict = {}
        for part in gathered:
            out.update(part)
        return out
