"""Tiny fake datasets (solid-colour images that encode their caption and class) and fake encoders."""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from PIL import Image

from workbench.data.shards import Sample
from workbench.evaluate.spec import Suite

CLASSES = ["cat", "dog", "owl"]
N_CAPTIONS = 120
FONTS = 2


def toy_class(item: int) -> int:
    """Imbalanced: 60% cat, 30% dog, 10% owl."""
    return 0 if item % 10 < 6 else (1 if item % 10 < 9 else 2)


def toy_samples() -> list[Sample]:
    """Each caption ``item {i}`` in two 'fonts' (same caption, different blue channel), like glyphs."""
    return [Sample(uid=f"item{i}-font{f}", image=Image.new("RGB", (8, 8), (i, 40 * toy_class(i), 100 * f)),
                   caption=f"item {i}", source="toy", classes={"category": CLASSES[toy_class(i)]},
                   group=f"item{i}")
            for i in range(N_CAPTIONS) for f in range(FONTS)]


def toy_suite(**headline) -> Suite:
    return Suite.model_validate({
        "tasks": [
            {"name": "zs_toy", "kind": "zeroshot", "dataset": "toy", "field": "category", "domain": "in-domain",
             "templates": ["a photo of a {}.", "a drawing of a {}."]},
            {"name": "ret_toy", "kind": "retrieval", "dataset": "toy", "domain": "transfer"},
        ],
        "headline": headline or {"zeroshot": {"tasks": ["zs_toy"]}, "retrieval": {"tasks": ["ret_toy"], "metric": "r1"},
                                 "avg": {"tasks": "all"}},
    })


class PerfectEncoder:
    """Image → one-hot of its caption id (red) plus one-hot of its class (green); texts likewise."""

    image_size = 8
    dim = 256 + len(CLASSES)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        colour = (pixels.mean(dim=(2, 3)) * 255).round().long()
        emb = torch.zeros(len(pixels), self.dim)
        rows = torch.arange(len(pixels))
        emb[rows, colour[:, 0]] = 1
        emb[rows, 256 + colour[:, 1] // 40] = 1
        return F.normalize(emb, dim=-1)

    def encode_texts(self, texts) -> torch.Tensor:
        emb = torch.zeros(len(texts), self.dim)
        for row, text in enumerate(texts):
            match = re.fullmatch(r"item (\d+)", text)
            if match:
                emb[row, int(match.group(1))] = 1
            else:
                emb[row, 256 + next(i for i, c in enumerate(CLASSES) if c in text)] = 1
        return F.normalize(emb, dim=-1)


class RandomEncoder:
    image_size = 8

    def __init__(self, seed: int = 0, dim: int = 32):
        self.generator = torch.Generator().manual_seed(seed)
        self.dim = dim

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(torch.randn(len(pixels), self.dim, generator=self.generator), dim=-1)

    def encode_texts(self, texts) -> torch.Tensor:
        return F.normalize(torch.randn(len(texts), self.dim, generator=self.generator), dim=-1)
