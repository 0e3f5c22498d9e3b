"""The training loop for CLIP students: AdamW, warmup + cosine, grad clip, periodic eval, exact resume.

The loop knows nothing of MLflow or Optuna: it reports metrics to a ``Reporter`` and asks it whether to
stop early (pruning). Checkpoints and the metric history live in a ``partial`` folder that survives a
killed process; a rerun with the same folder continues at the last checkpoint and sees the same batches.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from workbench.augment.policy import apply
from workbench.config.recipe import Recipe
from workbench.data.reinforced.dataset import ReinforcedDataset
from workbench.distributed import init_distributed
from workbench.evaluate.spec import load_suite
from workbench.evaluate.suite import run_suite
from workbench.models.students import (count_parameters, create_student, get_tokenizer, image_size_of,
                                       make_encoder, training_load_size)
from workbench.stages.progress import progress_bar
from workbench.threads import resolve_threads
from workbench.train.data import BatchStream, load_training_set
from workbench.train.loop import (build_optimizer, check_finite, lr_at, restore_checkpoint,
                                  save_checkpoint, seed_everything, set_lr)
from workbench.train.objective import Batch, distillation_loss, plain_clip_loss, train_step
from workbench.train.reinforced import ReinforcedStream, load_reinforced_set
from workbench.workspace import Workspace

HISTORY = "history.jsonl"


class Reporter(Protocol):
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def should_prune(self, objective: float, step: int) -> bool: ...


class NullReporter:
    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def should_prune(self, objective: float, step: int) -> bool:
        return False


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
    threads: int
    """torch's CPU threads (of the last segment, when resumed). A seed's metrics are bitwise-identical only
    at the same thread count: another count reorders float sums, which changes the run within seed noise."""


def _load_history(partial: Path, upto_step: int) -> list[dict]:
    path = partial / HISTORY
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["train_step"] <= upto_step]


class PlainTask:
    """Plain CLIP on the recipe's training sets (the non-reinforced baseline)."""

    def __init__(self, recipe: Recipe, ws: Workspace, image_size: int, tokenizer, progress: bool):
        data = load_training_set(ws, recipe.data.train, training_load_size(image_size), recipe.seed, tokenizer,
                                 recipe.data.max_train_samples, progress=progress, holdout=recipe.data.holdout)
        self.stream = BatchStream(data, recipe.train.batch_size, recipe.seed, image_size, recipe.augment)
        self.loss_fn = plain_clip_loss

    def batch(self, step: int, part: slice) -> Batch:
        pixels, tokens = self.stream.batch(step)
        return Batch(pixels[part], [tokens[part]])

    def epochs_at(self, step: int) -> float:
        return self.stream.epochs_at(step)


@dataclass(frozen=True)
class Distillation:
    """What a distilled student learns from, opened by the caller: the reinforced dataset (and its
    stage key) and, for ``distill.mode: online``, how to load the teachers that run at train time (called
    only when the student is trained, not when its training is a cache hit)."""

    key: str
    dataset: ReinforcedDataset
    load_teachers: Callable[[], tuple] = tuple


class ReinforcedTask:
    """Distillation from a reinforced dataset (stored embeddings), or from teachers run on the same
    replayed images at train time (``distill.mode: online``)."""

    def __init__(self, recipe: Recipe, ws: Workspace, image_size: int, tokenizer, progress: bool,
                 distillation: Distillation):
        reinforced = distillation.dataset
        self.online = recipe.distill.mode == "online"
        load_size = reinforced.source_size if self.online else training_load_size(image_size)
        self.data = load_reinforced_set(recipe, reinforced, ws, load_size, tokenizer, progress)
        self.stream = ReinforcedStream(self.data, recipe, image_size)
        distill = recipe.distill
        scales = list(distill.logit_scales) if distill.logit_scales is not None else self.data.teacher_scales
        self.loss_fn = distillation_loss(distill.lam, distill.ensemble, distill.gt_weight, distill.synthetic_weight,
                                         self.data.dims, scales)
        self.teachers = list(distillation.load_teachers()) if self.online else []
        if self.online and len(self.teachers) != len(recipe.distilled_teachers):
            raise ValueError(f"online distillation needs its teachers loaded: {recipe.distilled_teachers}")

    def batch(self, step: int, part: slice) -> Batch:
        b = self.stream.batch(step, part)
        if self.online:
            b = self._teach(b)
        tokens = [b.tokens] + ([b.syn_tokens] if b.syn_tokens is not None else [])
        targets = {"teacher_image": b.teacher_image, "teacher_text": b.teacher_text}
        if b.teacher_syn is not None:
            targets["teacher_syn"] = b.teacher_syn
        return Batch(b.pixels, tokens, targets)

    def _teach(self, b):
        """The teachers' embeddings of this batch, computed now: the views they would have stored."""
        data = self.data
        images = data.images[b.indices]
        with torch.no_grad():
            b.teacher_image = torch.cat([t.encode_images(apply(images, b.params, data.policy, t.image_size,
                                                                 data.source_size, data.reference_size))
                                         for t in self.teachers], dim=1)
            b.teacher_text = torch.cat([t.encode_texts(b.texts) for t in self.teachers], dim=1)
            if b.syn_texts is not None:
                b.teacher_syn = torch.cat([t.encode_texts(b.syn_texts) for t in self.teachers], dim=1)
        return b

    def epochs_at(self, step: int) -> float:
        return self.stream.epochs_at(step)


def _setup_process(recipe: Recipe) -> tuple[int, int, torch.device]:
    """Threads, ranks and seeds, before anything draws a random number."""
    cfg = recipe.train
    torch.set_num_threads(resolve_threads(cfg.threads))  # never the caller's count: see workbench.threads
    rank, world = init_distributed()
    if cfg.batch_size % (world * cfg.accumulate):
        raise ValueError(f"train.batch_size {cfg.batch_size} does not split over {world} ranks × "
                         f"{cfg.accumulate} micro-batches")
    seed_everything(recipe.seed)
    device = torch.device(f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")
    return rank, world, device


def _setup_model(recipe: Recipe, device: torch.device):
    """The student, its encoder view, its optimizer and (``train.ema``) its moving average."""
    cfg = recipe.train
    model = create_student(recipe.model, cfg.logit_scale_init).to(device)
    encoder = make_encoder(model, recipe.model.name)
    optimizer = build_optimizer(model, cfg)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if cfg.ema else None
    return model, encoder, optimizer, ema


def _setup_task(recipe: Recipe, ws: Workspace, image_size: int, progress: bool,
                distillation: Distillation | None) -> PlainTask | ReinforcedTask:
    tokenizer = get_tokenizer(recipe.model.name)
    if not recipe.distils:
        return PlainTask(recipe, ws, image_size, tokenizer, progress)
    if distillation is None:
        raise ValueError("a recipe with teachers trains on its reinforced dataset: pass its Distillation")
    return ReinforcedTask(recipe, ws, image_size, tokenizer, progress, distillation)


def _setup_history(partial: Path, start: int, rank: int, batch_size: int, reporter: Reporter):
    """Keep the history up to the restored step (a resumed run shows its whole curve); return ``record``."""
    history = _load_history(partial, start)
    if rank == 0:
        (partial / HISTORY).write_text("".join(json.dumps(row) + "\n" for row in history))
        for row in history:
            reporter.log_metrics(row["metrics"], row["seen_samples"])

    def record(metrics: dict[str, float], step: int) -> None:
        if rank:
            return
        row = {"train_step": step, "seen_samples": step * batch_size, "metrics": metrics}
        with open(partial / HISTORY, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        reporter.log_metrics(metrics, row["seen_samples"])

    return record


def train_student(recipe: Recipe, ws: Workspace, out_dir: Path, partial: Path,
                  reporter: Reporter | None = None, objective: str | None = None,
                  progress: bool = True, distillation: Distillation | None = None) -> TrainSummary:
    """Train ``recipe`` and write ``model.pt`` + ``summary.json`` + ``history.jsonl`` into ``out_dir``.
    A recipe with teachers learns from ``distillation`` (``workbench.study.pipeline.distillation``).

    Under torchrun every rank trains its share of each global batch; rank 0 evaluates, checkpoints and
    writes the outputs.
    """
    reporter = reporter or NullReporter()
    cfg = recipe.train
    rank, world, device = _setup_process(recipe)
    model, encoder, optimizer, ema = _setup_model(recipe, device)
    task = _setup_task(recipe, ws, image_size_of(model), progress and rank == 0, distillation)
    suite = load_suite(recipe.eval.suite)
    local = cfg.batch_size // world
    part = slice(rank * local, (rank + 1) * local)
    wrapped = model
    if world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    partial.mkdir(parents=True, exist_ok=True)
    start = restore_checkpoint(partial, model, optimizer, device, ema)
    record = _setup_history(partial, start, rank, cfg.batch_size, reporter)

    def evaluated():
        return make_encoder(ema.module, recipe.model.name) if ema is not None else encoder

    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16"
                else contextlib.nullcontext())
    no_sync = wrapped.no_sync if world > 1 else None
    max_log_scale = math.log(cfg.logit_scale_max)
    loss_value, window_start, window_samples, train_seconds = float("nan"), time.perf_counter(), 0, 0.0
    model.train()
    bar = progress_bar(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train",
                       enabled=progress and rank == 0, leave=False)
    for step in bar:
        lr = lr_at(step, cfg)
        set_lr(optimizer, lr)
        batch = task.batch(step, part)
        batch = Batch(batch.pixels.to(device), [t.to(device) for t in batch.tokens],
                      {k: v.to(device) for k, v in batch.targets.items()})
        optimizer.zero_grad(set_to_none=True)
        loss = train_step(wrapped, encoder.normalize, batch, task.loss_fn, cfg.accumulate, autocast, no_sync)
        loss_value = float(loss.total.detach())
        check_finite(loss_value, f"loss is {loss_value} at step {step} (lr {lr:.3g}, logit scale "
                                 f"{float(model.logit_scale.detach().exp()):.3g}); lower train.lr or raise warmup_steps")
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, max_log_scale)
        if ema is not None:
            ema.update_parameters(model)
        window_samples += cfg.batch_size
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            elapsed = time.perf_counter() - window_start
            train_seconds += elapsed
            parts = {f"train/{k}": float(v.detach()) for k, v in loss.parts.items()}
            record({"train/loss": loss_value, "train/lr": lr, "train/logit_scale": float(model.logit_scale.detach().exp()),
                    "train/samples_per_s": window_samples / max(elapsed, 1e-9),
                    "train/epoch": task.epochs_at(done)} | parts, done)
            bar.set_postfix(loss=f"{loss_value:.3f}")
            window_samples = 0
        if done % cfg.checkpoint_every == 0 and done < cfg.steps and rank == 0:
            save_checkpoint(partial, model, optimizer, done, ema)
        if done % cfg.eval_every == 0 and done < cfg.steps and rank == 0:
            model.eval()
            result = run_suite(evaluated(), ws, suite)
            model.train()
            record({f"eval/{k}": v for k, v in result.metrics.items()}, done)
            if objective and reporter.should_prune(result.metrics[objective], done * cfg.batch_size):
                raise TrainingPruned(f"pruned at step {done}: {objective} = {result.metrics[objective]:.4f}")
        window_start = time.perf_counter() if (done % cfg.log_every == 0) else window_start
    bar.close()

    final = ema.module if ema is not None else model
    summary = TrainSummary(steps=cfg.steps, seen_samples=cfg.steps * cfg.batch_size,
                           epochs=task.epochs_at(cfg.steps), final_loss=loss_value,
                           train_seconds=train_seconds, samples_per_s=(cfg.steps - start) * cfg.batch_size
                           / max(train_seconds, 1e-9), parameters=count_parameters(model),
                           resumed_from_step=start, threads=torch.get_num_threads())
    if rank == 0:
        torch.save({"model": final.state_dict(), "model_name": recipe.model.name,
                    "recipe": recipe.model_dump(mode="json")}, out_dir / "model.pt")
        (out_dir / "summary.json").write_text(json.dumps(asdict(summary), indent=2))
        (out_dir / HISTORY).write_text((partial / HISTORY).read_text())
    return summary
