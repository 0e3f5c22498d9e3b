"""CLIP's contrastive loss and MobileCLIP2's distillation loss (Eq. 1 and 2).

    L_Distill = 1/(2K) Σ_k [ KL(S_τk(Ψ_img^k, Ψ_txt^k) ‖ S_τ̂(Φ_img, Φ_txt)) + KL(S_τk(Ψ_txt^k, Ψ_img^k) ‖ S_τ̂(Φ_txt, Φ_img)) ]
    L_Total   = (1 − λ) L_CLIP + λ L_Distill

KL terms are averaged over rows (the 1/b), teachers and directions. KL rather than cross-entropy
against the teacher's probabilities: the gradient is the same and the logged value is 0 at a perfect
match. ``ensemble="probabilities"`` averages the teachers' softmax outputs first and takes one KL per
direction instead (the other variant of the reference code). Both give the student the same gradient:
d/ds of mean_k KL(p_k ‖ softmax(s)) and of KL(mean_k p_k ‖ softmax(s)) are both softmax(s) − mean_k p_k,
since the two differ by a term free of the student (the teachers' mean entropy against the entropy of
their mean). The variants differ only in the logged value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

Ensemble = Literal["kl", "probabilities"]


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Mean of image→text and text→image cross-entropy; row i of each is the matching pair."""
    logits = logit_scale * image @ text.t()
    labels = torch.arange(len(image), device=image.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def _kl_rows(target_log_probs: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(target ‖ softmax(student_logits))."""
    return F.kl_div(F.log_softmax(student_logits, dim=1), target_log_probs, log_target=True,
                    reduction="batchmean")


def distill_terms(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
                  teacher_image: list[torch.Tensor], teacher_text: list[torch.Tensor], teacher_scales: list[float],
                  ensemble: Ensemble = "kl") -> tuple[torch.Tensor, torch.Tensor]:
    """(image→text, text→image) distillation terms, each averaged over teachers (or their probabilities)."""
    student = logit_scale * image @ text.t()
    teachers = [scale * ti.to(image.dtype) @ tt.to(image.dtype).t()
                for ti, tt, scale in zip(teacher_image, teacher_text, teacher_scales)]
    if ensemble == "kl":
        image_to_text = sum(_kl_rows(F.log_softmax(t, dim=1), student) for t in teachers) / len(teachers)
        text_to_image = sum(_kl_rows(F.log_softmax(t.t(), dim=1), student.t()) for t in teachers) / len(teachers)
    else:
        def mean_log_probs(logits: list[torch.Tensor]) -> torch.Tensor:
            return torch.logsumexp(torch.stack([F.log_softmax(x, dim=1) for x in logits]), dim=0) - math.log(len(logits))

        image_to_text = _kl_rows(mean_log_probs(teachers), student)
        text_to_image = _kl_rows(mean_log_probs([t.t() for t in teachers]), student.t())
    return image_to_text, text_to_image


@dataclass
class LossParts:
    """The total and its logged parts (floats detached at logging time)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]


def caption_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
                 teacher_image: list[torch.Tensor], teacher_text: list[torch.Tensor], teacher_scales: list[float],
                 lam: float, ensemble: Ensemble, prefix: str) -> LossParts:
    """(1 − λ)·L_CLIP + λ·L_Distill for one caption kind (ground truth or synthetic)."""
    parts: dict[str, torch.Tensor] = {}
    total = image.new_zeros(())
    if lam < 1:
        parts[f"{prefix}/clip"] = clip_loss(image, text, logit_scale)
        total = total + (1 - lam) * parts[f"{prefix}/clip"]
    if lam > 0:
        i2t, t2i = distill_terms(image, text, logit_scale, teacher_image, teacher_text, teacher_scales, ensemble)
        parts[f"{prefix}/kd_image_to_text"], parts[f"{prefix}/kd_text_to_image"] = i2t, t2i
        total = total + lam * (i2t + t2i) / 2
    return LossParts(total, parts)
