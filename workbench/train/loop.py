"""The training-loop kit every fit shares: the student trainer, the captioner trainer and the LiT fit.

A linear-warmup cosine schedule, AdamW without decay on gains and biases, checkpoints replaced
atomically (a kill never leaves half a file) and the finite-loss guard.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"


class Schedule(Protocol):
    lr: float
    warmup_steps: int
    steps: int


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says at which step and what to change."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_at(step: int, schedule: Schedule) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``min_lr`` (0 where the schedule has none) at the last step."""
    if step < schedule.warmup_steps:
        return schedule.lr * (step + 1) / schedule.warmup_steps
    min_lr = getattr(schedule, "min_lr", 0.0)
    progress = (step - schedule.warmup_steps) / max(1, schedule.steps - schedule.warmup_steps)
    return min_lr + 0.5 * (schedule.lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def check_finite(loss: float, message: str) -> None:
    """Stop a fit whose loss is NaN or infinite, saying ``message`` (where, and what to change)."""
    if not math.isfinite(loss):
        raise TrainingDiverged(message)


def build_optimizer(model: torch.nn.Module, cfg) -> torch.optim.AdamW:
    """No weight decay on gains, biases and the logit scale (as open_clip's trainer)."""
    def exclude(name: str, param: torch.nn.Parameter) -> bool:
        return param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
              {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": cfg.weight_decay}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-6)


def _save_atomic(obj: object, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(partial: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    ema: torch.nn.Module | None = None) -> None:
    """Model, optimizer (and EMA) after ``step`` steps, replaced atomically."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
    if ema is not None:
        state["ema"] = ema.state_dict()
    _save_atomic(state, partial / CHECKPOINT)


def restore_checkpoint(partial: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       device: torch.device, ema: torch.nn.Module | None = None) -> int:
    """Load the last checkpoint in ``partial`` (if any) into model, optimizer and EMA; return its step."""
    if not (partial / CHECKPOINT).exists():
        return 0
    state = torch.load(partial / CHECKPOINT, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    return state["step"]
