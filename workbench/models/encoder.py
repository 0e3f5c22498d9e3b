"""The interface every image-text model exposes to evaluation (and, later, to reinforcement).

Students, teachers and hub models differ in preprocessing and tokenisation; the encoder owns both, so
callers hand it plain pixels and plain strings.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch
import torch.nn.functional as F


class ImageTextEncoder(Protocol):
    image_size: int

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, image_size, image_size] floats in [0, 1] → L2-normalised [B, D]."""

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Strings → L2-normalised [B, D]."""


class OpenClipEncoder:
    """Wraps an open_clip CLIP model, its tokenizer and its normalisation constants."""

    def __init__(self, model: torch.nn.Module, tokenizer, image_size: int,
                 mean: Sequence[float], std: Sequence[float]):
        self.model = model
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean.to(pixels.device)) / self.std.to(pixels.device)

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = pixels.to(self.device, torch.float32)
        return F.normalize(self.model.encode_image(self.normalize(pixels)).float(), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)
