"""Zero-shot classification: class names × prompt templates against image embeddings.

Reports top-1 and balanced accuracy (mean per-class recall). The eval sets are imbalanced (one
openclipart folder is a quarter of its images), so top-1 mostly measures which class a model favours;
balanced accuracy is the headline metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from workbench.models.encoder import ImageTextEncoder


def class_embeddings(encoder: ImageTextEncoder, classnames: Sequence[str], templates: Sequence[str],
                     batch_size: int = 512) -> torch.Tensor:
    """[C, D]: per class, the mean of its normalised prompt embeddings, renormalised (CLIP's ensembling)."""
    prompts = [template.format(name) for name in classnames for template in templates]
    embedded = torch.cat([encoder.encode_texts(prompts[i:i + batch_size])
                          for i in range(0, len(prompts), batch_size)])
    embedded = F.normalize(embedded.float(), dim=-1).view(len(classnames), len(templates), -1)
    return F.normalize(embedded.mean(dim=1), dim=-1)


@dataclass(frozen=True)
class ZeroShotScores:
    top1: float
    balanced_acc: float
    per_class_recall: np.ndarray
    counts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def num_classes(self) -> int:
        return len(self.counts)

    @property
    def chance_top1(self) -> float:
        """What always answering the majority class scores."""
        return float(self.counts.max() / self.counts.sum())

    @property
    def chance_balanced_acc(self) -> float:
        """Any constant (or random) answer has mean per-class recall 1/C."""
        return 1.0 / self.num_classes

    @property
    def stderr_top1(self) -> float:
        return math.sqrt(self.top1 * (1 - self.top1) / self.n)

    @property
    def stderr_balanced_acc(self) -> float:
        """sqrt(sum_c r_c (1 - r_c) / n_c) / C: binomial noise of each class's recall, classes independent."""
        r = self.per_class_recall
        return float(np.sqrt(np.sum(r * (1 - r) / self.counts)) / self.num_classes)


def score_zeroshot(image_emb: torch.Tensor, class_emb: torch.Tensor, labels: torch.Tensor) -> ZeroShotScores:
    """Score predictions argmax(image · class); labels are class indices, every class present.

    A tie for the top score earns 1/(number tied) if the true class is among them — the expectation
    under random tie-breaking — so a collapsed encoder scores exactly chance, not class 0's share.
    Non-finite embeddings (a diverged run) score NaN rather than an accidental number.
    """
    labels = labels.long()
    num_classes = class_emb.shape[0]
    counts = torch.bincount(labels, minlength=num_classes).double()
    if len(counts) > num_classes or bool((counts == 0).any()):
        raise ValueError(f"labels must cover exactly the {num_classes} classes, each at least once")
    if not (torch.isfinite(image_emb).all() and torch.isfinite(class_emb).all()):
        nan = np.full(num_classes, np.nan)
        return ZeroShotScores(math.nan, math.nan, nan, counts.numpy())
    logits = image_emb.float() @ class_emb.float().T
    top = logits.max(dim=1, keepdim=True).values
    at_top = logits == top
    credit = at_top.gather(1, labels[:, None]).squeeze(1).double() / at_top.sum(dim=1).double()
    recall = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, labels, credit) / counts
    return ZeroShotScores(top1=float(credit.mean()), balanced_acc=float(recall.mean()),
                          per_class_recall=recall.numpy(), counts=counts.numpy())
