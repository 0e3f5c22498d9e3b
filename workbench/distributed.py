"""Where this process stands among torchrun's processes (one place reads RANK / WORLD_SIZE)."""

from __future__ import annotations

import os

from workbench.config.overrides import ConfigError
from workbench.processes import die_with_parent


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when unset."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= rank < world:
        raise ConfigError("RANK / WORLD_SIZE", f"rank {rank} is outside a world of {world}")
    return rank, world


def init_distributed() -> tuple[int, int]:
    """(rank, world size); under torchrun, initialises the process group (nccl on GPUs, gloo on CPUs)."""
    import torch
    import torch.distributed as dist

    _, world = rank_and_world()
    if world == 1:
        return 0, 1
    die_with_parent()  # a rank whose launcher is killed stops too, rather than train on alone
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world
