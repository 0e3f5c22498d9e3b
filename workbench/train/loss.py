"""The CLIP contrastive loss (InfoNCE over the batch, both directions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Mean of image→text and text→image cross-entropy; row i of each is the matching pair."""
    logits = logit_scale * image @ text.t()
    labels = torch.arange(len(image), device=image.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
