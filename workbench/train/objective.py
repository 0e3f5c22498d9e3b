"""What one training step computes: batches, student features, and the loss over the whole batch.

The loss of a batch needs the features of the whole batch (its similarity matrices span it), so both
gradient accumulation and data parallelism work on features, not on losses:

- accumulation over J micro-batches first embeds every micro-batch without gradients, then, for each
  micro-batch j, embeds j again with gradients, splices it into the cached features and back-propagates
  the whole-batch loss. Every parameter's gradient sums to that of one big batch; the student's logit
  scale, which every pass touches, takes its gradient from the last pass only (the one DDP syncs).
- across ranks, features are all-gathered (with gradients for the local part) so every rank computes
  the loss of the global batch; DDP's gradient averaging then gives exactly its gradient.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.distributed as dist

from workbench.train.loss import LossParts, caption_loss, clip_loss


@dataclass
class Batch:
    """One (local) batch: pixels, token groups embedded by the text tower, and loss targets."""

    pixels: torch.Tensor
    tokens: list[torch.Tensor]
    """Caption groups, each [B, context]: ground truth first, then (optionally) synthetic."""
    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    """Per-sample tensors the loss needs besides student features (teacher embeddings), [B, ...]."""

    def rows(self, part: slice) -> "Batch":
        return Batch(self.pixels[part], [t[part] for t in self.tokens], {k: v[part] for k, v in self.targets.items()})


LossFn = Callable[[torch.Tensor, list[torch.Tensor], torch.Tensor, dict[str, torch.Tensor]], LossParts]


def plain_clip_loss(image: torch.Tensor, texts: list[torch.Tensor], scale: torch.Tensor,
                    targets: dict[str, torch.Tensor]) -> LossParts:
    loss = clip_loss(image, texts[0], scale)
    return LossParts(loss, {"gt/clip": loss})


def distillation_loss(lam: float, ensemble: str, gt_weight: float, synthetic_weight: float,
                      dims: list[int], teacher_scales: list[float]) -> LossFn:
    """MobileCLIP2's loss on the ground-truth caption and, when the batch has one, a synthetic caption."""
    def split(embeddings: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(embeddings, dims, dim=1))

    def loss(image: torch.Tensor, texts: list[torch.Tensor], scale: torch.Tensor,
             targets: dict[str, torch.Tensor]) -> LossParts:
        teacher_image = split(targets["teacher_image"])
        gt = caption_loss(image, texts[0], scale, teacher_image, split(targets["teacher_text"]), teacher_scales,
                          lam, ensemble, "gt")
        total, parts = gt_weight * gt.total, dict(gt.parts)
        if len(texts) > 1:
            syn = caption_loss(image, texts[1], scale, teacher_image, split(targets["teacher_syn"]), teacher_scales,
                               lam, ensemble, "synthetic")
            total, parts = total + synthetic_weight * syn.total, parts | syn.parts
        return LossParts(total, parts)

    return loss


def _embed(model: torch.nn.Module, normalize: Callable, batch: Batch) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    sizes = [len(t) for t in batch.tokens]
    out = model(normalize(batch.pixels), torch.cat(batch.tokens))
    return out["image_features"].float(), list(torch.split(out["text_features"].float(), sizes)), out["logit_scale"]


def _gather(x: torch.Tensor, with_grad: bool) -> torch.Tensor:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    if with_grad:
        import torch.distributed.nn.functional as dist_fn

        return torch.cat(dist_fn.all_gather(x))
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def train_step(model: torch.nn.Module, normalize: Callable, batch: Batch, loss_fn: LossFn, accumulate: int,
               autocast: contextlib.AbstractContextManager, no_sync: Callable | None = None) -> LossParts:
    """Forward and backward one batch (gradients accumulate into ``.grad``); returns the loss parts."""
    targets = {k: _gather(v, with_grad=False) for k, v in batch.targets.items()}
    if accumulate == 1:
        with autocast:
            image, texts, scale = _embed(model, normalize, batch)
        parts = loss_fn(_gather(image, True), [_gather(t, True) for t in texts], scale, targets)
        parts.total.backward()
        return parts
    size = len(batch.pixels)
    if size % accumulate:
        raise ValueError(f"a batch of {size} does not split into {accumulate} equal micro-batches")
    slices = [slice(i, i + size // accumulate) for i in range(0, size, size // accumulate)]
    with torch.no_grad(), autocast:
        cached = [_embed(model, normalize, batch.rows(s)) for s in slices]
    for j, part in enumerate(slices):
        sync = no_sync() if (no_sync is not None and j < accumulate - 1) else contextlib.nullcontext()
        with sync:
            with autocast:
                image_j, texts_j, scale = _embed(model, normalize, batch.rows(part))
            image = torch.cat([image_j if i == j else c[0] for i, c in enumerate(cached)])
            texts = [torch.cat([texts_j[g] if i == j else c[1][g] for i, c in enumerate(cached)])
                     for g in range(len(texts_j))]
            parts = loss_fn(_gather(image, True), [_gather(t, True) for t in texts],
                            scale if j == accumulate - 1 else scale.detach(), targets)
            parts.total.backward()
    return parts
