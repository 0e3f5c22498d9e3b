"""The captioner training loop: CoCa loss (caption + contrastive), warmup + cosine, grad clip, exact resume.

Batches come from the students' ``BatchStream`` (a pure function of seed and step), and checkpoints and
the metric history live in the stage's partial folder, so a killed fit continues where it stopped and
sees the batches an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from open_clip.loss import CoCaLoss

from workbench.captioners.model import (Captioner, context_length, count_parameters, create_coca, load_grown, mean_std,
                                        save_captioner)
from workbench.captioners.vocab import PAD, FullVocabulary, Vocabulary, load_vocabulary
from workbench.data.arrays import SplitArrays, load_split_arrays, load_training_arrays
from workbench.evaluate.spec import DataRef
from workbench.models.students import configured_image_size, image_size_of, training_load_size
from workbench.stages.progress import progress_bar
from workbench.train.data import BatchStream, TrainingSet, capped_rows, tokenize_all
from workbench.train.loop import (build_optimizer, check_finite, lr_at, restore_checkpoint, save_checkpoint,
                                  seed_everything, set_lr)
from workbench.workspace import Workspace

if TYPE_CHECKING:
    from workbench.captioners.kinds import CaptionerEntry

HISTORY = "history.jsonl"

Log = Callable[[dict[str, float], int], None]


def ref_arrays(ws: Workspace, ref: DataRef, split: str, size: int, holdout: bool = False,
               progress: bool = False) -> SplitArrays:
    """The samples of a split that ``ref`` names; a train split without its validation slice if ``holdout``."""
    folder = ws.dataset_dir(ref.dataset)
    arrays = (load_training_arrays(folder, size, holdout, progress=progress) if split == "train"
              else load_split_arrays(folder, split, size, progress=progress))
    if not ref.filtered:
        return arrays
    return arrays.subset(np.asarray(ref.rows(arrays.classes, len(arrays), f"captioner data {ref.describe()}")))


def train_captions(ws: Workspace, refs: list[DataRef], size: int, holdout: bool = False) -> list[str]:
    """Every train caption of ``refs`` (what the vocabulary is built from), read from the arrays the
    training set is loaded from next."""
    return [caption for ref in refs for caption in ref_arrays(ws, ref, "train", size, holdout).captions]


def training_set(ws: Workspace, refs: list[DataRef], size: int, seed: int, vocab: Vocabulary,
                 max_samples: int | None, holdout: bool, progress: bool) -> TrainingSet:
    """The train splits of ``refs`` concatenated, capped like a student's (``train.data.load_training_set``)."""
    parts = [ref_arrays(ws, ref, "train", size, holdout, progress) for ref in refs]
    images = np.concatenate([p.images for p in parts]) if len(parts) > 1 else np.array(parts[0].images)
    captions = [caption for part in parts for caption in part.captions]
    keep = capped_rows(len(captions), max_samples, seed)
    if len(keep) < len(captions):
        images, captions = images[keep], [captions[i] for i in keep]
    return TrainingSet(torch.from_numpy(images), captions, tokenize_all(vocab, captions),
                       {ref.dataset: part.fingerprint for ref, part in zip(refs, parts)})


class HeldOut:
    """A fixed, seeded subset of the eval splits of the training sets: the held-out losses' data."""

    def __init__(self, ws: Workspace, refs: list[DataRef], size: int, vocab: Vocabulary, count: int, seed: int):
        images, captions = [], []
        for ref in refs:
            arrays = ref_arrays(ws, ref, "eval", size)
            images.append(np.asarray(arrays.images))
            captions += arrays.captions
        stacked = np.concatenate(images)
        keep = np.sort(np.random.default_rng(seed).permutation(len(captions))[:count])
        self.images = torch.from_numpy(stacked[keep])
        self.captions = [captions[i] for i in keep]
        self.tokens = vocab(self.captions)

    def pixels(self, start: int, stop: int) -> torch.Tensor:
        return self.images[start:stop].permute(0, 3, 1, 2).float().div_(255.0)


def coca_losses(model: torch.nn.Module, pixels: torch.Tensor, tokens: torch.Tensor,
                loss: CoCaLoss) -> dict[str, torch.Tensor]:
    """Weighted total and the unweighted caption cross-entropy and contrastive loss of one batch.

    The text is cut after the batch's longest caption: the decoder and its vocabulary-wide output
    layer are most of a micro CoCa's work, and the padding beyond carries no loss. (CoCa appends its
    contrastive class token after the text, so that token's position follows the batch's length.)
    """
    length = int((tokens != PAD).sum(dim=1).max())
    out = model(pixels, tokens[:, :length])
    parts = loss(out["image_features"], out["text_features"], out["logits"], out["labels"], out["logit_scale"],
                 output_dict=True)
    caption = parts["caption_loss"] / loss.caption_loss_weight if loss.caption_loss_weight else parts["caption_loss"]
    contrastive = (parts["contrastive_loss"] / loss.clip_loss_weight if loss.clip_loss_weight
                   else parts["contrastive_loss"])
    return {"loss": parts["caption_loss"] + parts["contrastive_loss"], "caption": caption, "contrastive": contrastive}


@torch.no_grad()
def held_out_losses(captioner: Captioner, held: HeldOut, loss: CoCaLoss, batch_size: int) -> dict[str, float]:
    model = captioner.model
    was_training = model.training
    model.eval()
    sums, batches = {"caption": 0.0, "contrastive": 0.0}, 0
    for start in range(0, len(held.captions), batch_size):
        stop = min(start + batch_size, len(held.captions))
        if stop - start < 2:
            break
        pixels, tokens = held.pixels(start, stop).to(captioner.device), held.tokens[start:stop].to(captioner.device)
        parts = coca_losses(model, captioner.normalize(pixels), tokens, loss)
        sums = {k: v + float(parts[k]) for k, v in sums.items()}
        batches += 1
    model.train(was_training)
    return {f"eval/{k}_loss": v / max(1, batches) for k, v in sums.items()}


def initial_model(spec: CaptionerEntry, model_name: str, ws: Workspace, parent: Path | None
                  ) -> tuple[torch.nn.Module, Vocabulary | FullVocabulary, int, int | None]:
    """A fresh CoCa with the vocabulary of ``spec.data`` (pretrain), or the parent's weights with its
    vocabulary extended by the fine-tune set's new tokens (a full-BPE parent has none to add). Returns the
    number of new tokens too, and the model's text context where it differs from its config's."""
    captions = train_captions(ws, spec.refs, training_load_size(configured_image_size(model_name)), spec.holdout)
    if parent is None:
        context = getattr(spec, "context_length", None)
        vocab = Vocabulary.build(captions, context or context_length(model_name), min_count=spec.fit.min_count)
        return create_coca(model_name, len(vocab), context), vocab, len(vocab), context
    base = load_vocabulary(parent / "vocab.json")
    vocab = base.extend(captions, spec.fit.min_count)
    state = torch.load(parent / "model.pt", map_location="cpu", weights_only=True)
    model = create_coca(model_name, len(vocab), state.get("context_length"))
    load_grown(model, state["model"])
    return model, vocab, len(vocab) - len(base), state.get("context_length")


def train_captioner(name: str, key: str, spec: CaptionerEntry, model_name: str, ws: Workspace,
                    out: Path, partial: Path, parent: Path | None, log: Log, progress: bool) -> tuple[Captioner, dict]:
    """Fit one captioner into ``out`` (model.pt, vocab.json, history.jsonl); returns it and a summary."""
    fit = spec.fit
    seed_everything(spec.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, vocab, new_tokens, context = initial_model(spec, model_name, ws, parent)
    model.to(device)
    captioner = Captioner(name, key, model, vocab, model_name)
    size = image_size_of(model)
    data = training_set(ws, spec.refs, training_load_size(size), spec.seed, vocab, fit.max_train_samples,
                        spec.holdout, progress)
    stream = BatchStream(data, fit.batch_size, spec.seed, size, fit.augment)
    held = HeldOut(ws, spec.refs, size, vocab, fit.eval_samples, spec.seed)
    loss_fn = CoCaLoss(caption_loss_weight=fit.caption_loss_weight, clip_loss_weight=fit.clip_loss_weight,
                       pad_id=PAD)
    optimizer = build_optimizer(model, fit)  # same schedule fields and no-decay rule as the students

    partial.mkdir(parents=True, exist_ok=True)
    start = restore_checkpoint(partial, model, optimizer, device)
    history = [row for row in _read_history(partial) if row["step"] <= start]
    (partial / HISTORY).write_text("".join(json.dumps(row) + "\n" for row in history))
    for row in history:  # a resumed fit shows its whole curve
        log(row["metrics"], row["seen_samples"])

    def record(metrics: dict[str, float], step: int) -> None:
        row = {"step": step, "seen_samples": step * stream.batch_size, "metrics": metrics}
        with open(partial / HISTORY, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        log(metrics, row["seen_samples"])

    mean, std = (t.to(device) for t in mean_std(model))
    max_log_scale = math.log(100.0)
    window = {"loss": 0.0, "caption": 0.0, "contrastive": 0.0}
    window_steps, window_start, train_seconds = 0, time.perf_counter(), 0.0
    last: dict[str, float] = {}
    model.train()
    bar = progress_bar(range(start, fit.steps), initial=start, total=fit.steps, desc=f"captioner {name}",
                       enabled=progress, leave=False)
    for step in bar:
        lr = lr_at(step, fit)
        set_lr(optimizer, lr)
        pixels, tokens = (t.to(device) for t in stream.batch(step))
        parts = coca_losses(model, (pixels - mean) / std, tokens, loss_fn)
        value = float(parts["loss"].detach())
        check_finite(value, f"captioner {name} diverged at step {step} (loss {value}, lr {lr:.3g}); "
                            f"lower fit.lr or raise fit.warmup_steps")
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        if fit.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), fit.grad_clip)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, max_log_scale)
        window = {k: v + float(parts[k].detach()) for k, v in window.items()}
        window_steps += 1
        done = step + 1
        if done % fit.log_every == 0 or done == fit.steps:
            elapsed = time.perf_counter() - window_start
            train_seconds += elapsed
            last = {f"train/{k}" if k == "loss" else f"train/{k}_loss": v / window_steps for k, v in window.items()}
            record(last | {"train/lr": lr, "train/logit_scale": float(model.logit_scale.detach().exp()),
                           "train/samples_per_s": window_steps * stream.batch_size / max(elapsed, 1e-9),
                           "train/epoch": stream.epochs_at(done)}, done)
            bar.set_postfix(caption=f"{last['train/caption_loss']:.3f}")
            window = dict.fromkeys(window, 0.0)
            window_steps, window_start = 0, time.perf_counter()
        if done % fit.checkpoint_every == 0 and done < fit.steps:
            save_checkpoint(partial, model, optimizer, done)
        if done % fit.eval_every == 0 or done == fit.steps:
            record(held_out_losses(captioner, held, loss_fn, stream.batch_size), done)
            window_start = time.perf_counter()
    bar.close()
    model.eval()
    save_captioner(model, vocab, model_name, out, context)
    (out / HISTORY).write_text((partial / HISTORY).read_text())
    rows = _read_history(partial)
    final_eval = next((row["metrics"] for row in reversed(rows) if "eval/caption_loss" in row["metrics"]), {})
    final_train = next((row["metrics"] for row in reversed(rows) if "train/loss" in row["metrics"]), {})
    summary = {"steps": fit.steps, "resumed_from_step": start, "batch_size": stream.batch_size,
               "epochs": round(stream.epochs_at(fit.steps), 2), "train_pairs": len(data),
               "train_seconds": round(train_seconds, 1), "final": final_train | final_eval,
               "vocab_size": len(vocab), "new_tokens": new_tokens,
               "held_out_unknown_rate": round(vocab.unknown_rate(held.captions), 4),
               "parameters": count_parameters(model)}
    return captioner, summary


def _read_history(partial: Path) -> list[dict]:
    path = partial / HISTORY
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
