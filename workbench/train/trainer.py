"""The training loop for CLIP students: AdamW, warmup + cosine, grad clip, periodic eval, exact resume.

The loop knows nothing of MLflow or Optuna: it reports metrics to a ``Reporter`` and asks it whether to
stop early (pruning). Checkpoints and the metric history live in a ``partial`` folder that survives a
killed process; a rerun with the same folder continues at the last checkpoint and sees the same batches.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from workbench.config.recipe import Recipe, TrainConfig
from workbench.models.students import (count_parameters, create_student, get_tokenizer, image_size_of,
                                       make_encoder, training_load_size)
from workbench.train.data import BatchStream, load_training_set
from workbench.train.loss import clip_loss
from workbench.workspace import Workspace

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.jsonl"


class Reporter(Protocol):
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def should_prune(self, objective: float, step: int) -> bool: ...


class NullReporter:
    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def should_prune(self, objective: float, step: int) -> bool:
        return False


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says at which step and with what lr and scale."""


class TrainingPruned(RuntimeError):
    """The reporter asked to stop (an Optuna pruner judged the intermediate eval)."""


@dataclass
class TrainSummary:
    steps: int
    seen_samples: int
    epochs: float
    final_loss: float
    train_seconds: float
    samples_per_s: float
    parameters: dict[str, int]
    resumed_from_step: int


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``min_lr`` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
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


def save_checkpoint(partial: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
    """Model and optimizer after ``step`` steps, replaced atomically: a kill never leaves half a file."""
    _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step},
                 partial / CHECKPOINT)


def restore_checkpoint(partial: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       device: torch.device) -> int:
    """Load the last checkpoint in ``partial`` (if any) into model and optimizer; return its step."""
    if not (partial / CHECKPOINT).exists():
        return 0
    state = torch.load(partial / CHECKPOINT, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["step"]


def _load_history(partial: Path, upto_step: int) -> list[dict]:
    path = partial / HISTORY
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["train_step"] <= upto_step]


def train_student(recipe: Recipe, ws: Workspace, out_dir: Path, partial: Path,
                  reporter: Reporter | None = None, objective: str | None = None,
                  progress: bool = True) -> TrainSummary:
    """Train ``recipe`` and write ``model.pt`` + ``summary.json`` + ``history.jsonl`` into ``out_dir``."""
    from workbench.evaluate.spec import load_suite
    from workbench.evaluate.suite import run_suite

    reporter = reporter or NullReporter()
    cfg = recipe.train
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(recipe.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = create_student(recipe.model, cfg.logit_scale_init).to(device)
    tokenizer = get_tokenizer(recipe.model.name)
    image_size = image_size_of(model)
    encoder = make_encoder(model, recipe.model.name)
    optimizer = build_optimizer(model, cfg)
    data = load_training_set(ws, recipe.data.train, training_load_size(image_size), recipe.seed, tokenizer,
                             recipe.data.max_train_samples, progress=progress)
    stream = BatchStream(data, cfg.batch_size, recipe.seed, image_size, recipe.augment)
    suite = load_suite(recipe.eval.suite)

    partial.mkdir(parents=True, exist_ok=True)
    start = restore_checkpoint(partial, model, optimizer, device)
    history = _load_history(partial, start)
    (partial / HISTORY).write_text("".join(json.dumps(row) + "\n" for row in history))
    for row in history:  # a resumed run shows the whole curve
        reporter.log_metrics(row["metrics"], row["seen_samples"])

    def record(metrics: dict[str, float], step: int) -> None:
        row = {"train_step": step, "seen_samples": step * cfg.batch_size, "metrics": metrics}
        with open(partial / HISTORY, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        reporter.log_metrics(metrics, row["seen_samples"])

    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16"
                else contextlib.nullcontext())
    max_log_scale = math.log(cfg.logit_scale_max)
    loss_value, window_start, window_samples, train_seconds = float("nan"), time.perf_counter(), 0, 0.0
    model.train()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train", disable=None if progress else True,
               leave=False)
    for step in bar:
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        pixels, tokens = stream.batch(step)
        with autocast:
            out = model(pixels.to(device), tokens.to(device))
            loss = clip_loss(out["image_features"].float(), out["text_features"].float(), out["logit_scale"])
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise TrainingDiverged(f"loss is {loss_value} at step {step} (lr {lr:.3g}, logit scale "
                                   f"{float(out['logit_scale'].detach()):.3g}); lower train.lr or raise warmup_steps")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, max_log_scale)
        window_samples += cfg.batch_size
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            elapsed = time.perf_counter() - window_start
            train_seconds += elapsed
            record({"train/loss": loss_value, "train/lr": lr, "train/logit_scale": float(model.logit_scale.detach().exp()),
                    "train/samples_per_s": window_samples / max(elapsed, 1e-9),
                    "train/epoch": stream.epochs_at(done)}, done)
            bar.set_postfix(loss=f"{loss_value:.3f}")
            window_samples = 0
        if done % cfg.checkpoint_every == 0 and done < cfg.steps:
            save_checkpoint(partial, model, optimizer, done)
        if done % cfg.eval_every == 0 and done < cfg.steps:
            model.eval()
            result = run_suite(encoder, ws, suite)
            model.train()
            record({f"eval/{k}": v for k, v in result.metrics.items()}, done)
            if objective and reporter.should_prune(result.metrics[objective], done * cfg.batch_size):
                raise TrainingPruned(f"pruned at step {done}: {objective} = {result.metrics[objective]:.4f}")
        window_start = time.perf_counter() if (done % cfg.log_every == 0) else window_start
    bar.close()

    torch.save({"model": model.state_dict(), "model_name": recipe.model.name,
                "recipe": recipe.model_dump(mode="json")}, out_dir / "model.pt")
    summary = TrainSummary(steps=cfg.steps, seen_samples=cfg.steps * cfg.batch_size,
                           epochs=stream.epochs_at(cfg.steps), final_loss=loss_value,
                           train_seconds=train_seconds, samples_per_s=(cfg.steps - start) * cfg.batch_size
                           / max(train_seconds, 1e-9), parameters=count_parameters(model),
                           resumed_from_step=start)
    (out_dir / "summary.json").write_text(json.dumps(asdict(summary), indent=2))
    (out_dir / HISTORY).write_text((partial / HISTORY).read_text())
    return summary


def load_trained(path: Path, device: str = "cpu"):
    """Load a ``model.pt`` written by ``train_student`` as an ImageTextEncoder."""
    from workbench.config.recipe import ModelConfig

    state = torch.load(path, map_location=device, weights_only=False)
    model = create_student(ModelConfig(name=state["model_name"]))
    model.load_state_dict(state["model"])
    model.eval()
    return make_encoder(model.to(device), state["model_name"])
