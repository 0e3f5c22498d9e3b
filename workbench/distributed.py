"""Where this process stands among torchrun's processes (one place reads RANK / WORLD_SIZE)."""

from __future__ import annotations

import os

from workbench.config.overrides import ConfigError


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when unset."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= rank < world:
        raise ConfigError("RANK / WORLD_SIZE", f"rank {rank} is outside a world of {world}")
    return rank, world
