"""Parametrised, replayable image augmentation: sample parameters, apply them, store them compactly.

The policy — what to sample — is a schema in ``workbench.config.augment``; this module holds the ops.

The pipeline (in this order, as in the released DataCompDR reinforcement):

    RandomResizedCrop → horizontal flip → RandAugment → RangeAugment-style tone → RandomErasing

Every stage is a deterministic function of its stored parameters. Sampling draws a stage's
parameters, rounds them to exactly what is stored, and applies the stored values — the same code a
replay runs — so replaying stored parameters gives the sampled pixels bit for bit.

Parameters are resolution-free where the pixels are not: crops are boxes in the source frame (scaled
to the size the images are loaded at), erasing is a box in fractions of the output, translations
scale with the output. So a 32 px student replays what a 96 px teacher saw, at its own resolution and
with its own normalisation (normalisation happens in the model's encoder, after augmentation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from workbench.augment.crop import CropParams, crop_resize, sample_crop_params
from workbench.augment.ops import OP_NAMES, SIGNED, apply_ops, magnitude_of
# The schema (what to sample, the presets) is data, in workbench.config.augment; re-exported for callers here.
from workbench.config.augment import PRESETS, AugmentPolicy, Preset, describe, resolve_policy

__all__ = ["PRESETS", "ROUND", "AugParams", "AugmentPolicy", "Preset", "apply", "compress", "decompress",
           "describe", "resolve_policy", "sample", "stored_numbers"]

ROUND = 4
"""Decimals kept for stored floats: enough for any image size this runs at, short in JSON."""


@dataclass
class AugParams:
    """Parameters of B augmentations (one row each)."""

    crop: torch.Tensor        # [B, 4] int64: top, left, height, width in the source frame
    flip: torch.Tensor        # [B] bool
    ops: torch.Tensor         # [B, n] int64 RandAugment op index, -1 where skipped
    magnitudes: torch.Tensor  # [B, n] float64 signed magnitudes (translations in px of ``reference_size``)
    tone: torch.Tensor        # [B, 2] float64 brightness offset (fraction of 255), contrast factor; NaN skips
    erase: torch.Tensor       # [B, 4] float64 top, left, height, width as fractions of the output; NaN skips

    def __len__(self) -> int:
        return len(self.crop)

    def rows(self, index: torch.Tensor | list[int]) -> "AugParams":
        return AugParams(self.crop[index], self.flip[index], self.ops[index], self.magnitudes[index],
                         self.tone[index], self.erase[index])

    @staticmethod
    def cat(parts: list["AugParams"]) -> "AugParams":
        return AugParams(*(torch.cat([getattr(p, f) for p in parts]) for f in
                           ("crop", "flip", "ops", "magnitudes", "tone", "erase")))


def _empty(batch: int, policy: AugmentPolicy) -> AugParams:
    n = policy.randaugment_ops
    nan = float("nan")
    return AugParams(torch.zeros(batch, 4, dtype=torch.long), torch.zeros(batch, dtype=torch.bool),
                     torch.full((batch, n), -1, dtype=torch.long), torch.zeros(batch, n, dtype=torch.float64),
                     torch.full((batch, 2), nan, dtype=torch.float64), torch.full((batch, 4), nan, dtype=torch.float64))


# ------------------------------------------------------------------------------------------ compress
def compress(params: AugParams, policy: AugmentPolicy) -> list[list[Any]]:
    """One JSON-ready list per augmentation, one entry per stage of ``policy.stages`` (None = skipped):
    ``[[top, left, h, w], flip, [[op, magnitude], ...], [brightness, contrast], [top, left, h, w]]``.
    With crop + RandAugment only this is exactly DataCompDR's ``param_aug`` entry."""
    out = []
    for i in range(len(params)):
        row: list[Any] = []
        for stage in policy.stages:
            if stage == "random_resized_crop":
                row.append(params.crop[i].tolist())
            elif stage == "random_horizontal_flip":
                row.append(bool(params.flip[i]))
            elif stage == "rand_augment":
                skipped = bool((params.ops[i] < 0).all())
                row.append(None if skipped else [[int(o), float(m)] for o, m in zip(params.ops[i], params.magnitudes[i])])
            elif stage == "range_augment":
                row.append(None if math.isnan(params.tone[i, 0]) else params.tone[i].tolist())
            elif stage == "random_erase":
                row.append(None if math.isnan(params.erase[i, 0]) else params.erase[i].tolist())
        out.append(row)
    return out


def decompress(rows: list[list[Any]], policy: AugmentPolicy) -> AugParams:
    params = _empty(len(rows), policy)
    for i, row in enumerate(rows):
        if len(row) != len(policy.stages):
            raise ValueError(f"augmentation parameters {row!r} do not match the stages {policy.stages}")
        for stage, value in zip(policy.stages, row):
            if value is None:
                continue
            if stage == "random_resized_crop":
                params.crop[i] = torch.tensor([int(v) for v in value])
            elif stage == "random_horizontal_flip":
                params.flip[i] = bool(value)
            elif stage == "rand_augment":
                for slot, (op, magnitude) in enumerate(value[:policy.randaugment_ops]):
                    params.ops[i, slot], params.magnitudes[i, slot] = int(op), float(magnitude)
            elif stage == "range_augment":
                params.tone[i] = torch.tensor([float(v) for v in value], dtype=torch.float64)
            elif stage == "random_erase":
                params.erase[i] = torch.tensor([float(v) for v in value], dtype=torch.float64)
    return params


def stored_numbers(policy: AugmentPolicy) -> int:
    """Numbers one augmentation stores at most (the plan's storage estimate counts 4 bytes each)."""
    sizes = {"random_resized_crop": 4, "random_horizontal_flip": 1, "rand_augment": 2 * policy.randaugment_ops,
             "range_augment": 2, "random_erase": 4}
    return sum(sizes[s] for s in policy.stages)


# ------------------------------------------------------------------------------------------ stages
def _crop(images: torch.Tensor, params: AugParams, out_size: int, source_size: int | None) -> torch.Tensor:
    """uint8 [B, H, W, 3] → uint8 [B, 3, out, out]: crop, resize, flip, then quantise like a stored image."""
    top, left, height, width = params.crop.double().unbind(1)
    boxes = torch.stack([left, top, left + width, top + height], dim=1)
    if source_size is not None and source_size != images.shape[1]:
        boxes = boxes * (images.shape[1] / source_size)
    pixels = crop_resize(images, CropParams(boxes, params.flip), out_size)
    return pixels.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)


def _gray(images: torch.Tensor) -> torch.Tensor:
    """Luma [B, H, W], unrounded: the tone change's mean and the PSNR sizing (not ops._gray, which copies
    torchvision's truncation; stored augmentations replay with the one they were drawn with)."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * weights).sum(1)


def _tone(images: torch.Tensor, tone: torch.Tensor) -> torch.Tensor:
    """out = mean + contrast·(x − mean) + 255·brightness per image, mean of its grey levels (uint8 in/out)."""
    rows = (~tone[:, 0].isnan()).nonzero().squeeze(1)
    if not len(rows):
        return images
    x = images[rows].float()
    mean = _gray(images[rows]).mean(dim=(1, 2)).view(-1, 1, 1, 1)
    brightness, contrast = tone[rows, 0].float().view(-1, 1, 1, 1), tone[rows, 1].float().view(-1, 1, 1, 1)
    out = images.clone()
    out[rows] = (mean + contrast * (x - mean) + 255.0 * brightness).round().clamp(0, 255).to(torch.uint8)
    return out


def _erase(pixels: torch.Tensor, erase: torch.Tensor, fill: float) -> torch.Tensor:
    rows = (~erase[:, 0].isnan()).nonzero().squeeze(1)
    if not len(rows):
        return pixels
    size = pixels.shape[-1]
    top, left, height, width = (erase[rows] * size).round().long().unbind(1)
    grid = torch.arange(size)
    inside_y = (grid >= top[:, None]) & (grid < (top + height.clamp(min=1))[:, None])
    inside_x = (grid >= left[:, None]) & (grid < (left + width.clamp(min=1))[:, None])
    mask = (inside_y[:, :, None] & inside_x[:, None, :]).unsqueeze(1)  # [R, 1, S, S]
    pixels[rows] = pixels[rows].masked_fill(mask, fill)
    return pixels


def apply(images: torch.Tensor, params: AugParams, policy: AugmentPolicy, out_size: int,
          source_size: int | None = None, reference_size: int | None = None) -> torch.Tensor:
    """Replay ``params`` on uint8 [B, H, W, 3] images → float [B, 3, out, out] in [0, 1].

    ``source_size``: the square frame the crop boxes are in (None: the images' own pixels).
    ``reference_size``: the output size the parameters were drawn at (translations scale from it).
    """
    x = _crop(images, params, out_size, source_size)
    if policy.randaugment_ops:
        x = apply_ops(x, params.ops, params.magnitudes, reference_size or out_size)
    x = _tone(x, params.tone)
    pixels = x.float().div_(255.0)
    return _erase(pixels, params.erase, policy.erase_fill)


# ------------------------------------------------------------------------------------------ sampling
def _round(values: torch.Tensor) -> torch.Tensor:
    return values.double().mul(10**ROUND).round().div(10**ROUND)


def _sample_crop(batch: int, size: int, policy: AugmentPolicy, generator: torch.Generator) -> torch.Tensor:
    boxes = sample_crop_params(batch, size, policy.crop_scale, policy.crop_ratio, False, generator).boxes
    width = (boxes[:, 2] - boxes[:, 0]).round().clamp(1, size)
    height = (boxes[:, 3] - boxes[:, 1]).round().clamp(1, size)
    left = torch.minimum(boxes[:, 0].floor(), size - width)
    top = torch.minimum(boxes[:, 1].floor(), size - height)
    return torch.stack([top, left, height, width], dim=1).long()


def _sample_ops(batch: int, policy: AugmentPolicy, size: int, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    n = policy.randaugment_ops
    ops = torch.randint(len(OP_NAMES), (batch, n), generator=generator)
    signs = torch.randint(2, (batch, n), generator=generator)
    applied = torch.rand(batch, generator=generator) < policy.randaugment_p
    table = torch.tensor([magnitude_of(op, policy.randaugment_magnitude, policy.randaugment_bins, size)
                          for op in OP_NAMES], dtype=torch.float64)
    signed = torch.tensor([op in SIGNED for op in OP_NAMES])
    magnitudes = table[ops] * torch.where(signed[ops] & (signs == 1), -1.0, 1.0).double()
    ops = torch.where(applied[:, None], ops, torch.full_like(ops, -1))
    return ops, _round(torch.where(applied[:, None], magnitudes, torch.zeros_like(magnitudes)))


def _sample_tone(images: torch.Tensor, policy: AugmentPolicy, generator: torch.Generator) -> torch.Tensor:
    """Size the change to a target PSNR: a share α of the squared error from contrast, the rest from
    brightness (ignoring clipping): (1−c)²·σ² = α·mse and (255·b)² = (1−α)·mse."""
    batch = len(images)
    low, high = policy.tone_psnr
    psnr = torch.empty(batch, dtype=torch.float64).uniform_(low, high, generator=generator)
    share = torch.rand(batch, generator=generator, dtype=torch.float64)
    signs = torch.randint(2, (batch, 2), generator=generator).double() * 2 - 1
    applied = torch.rand(batch, generator=generator) < policy.tone_p
    mse = 255.0**2 / 10 ** (psnr / 10)
    spread = _gray(images).std(dim=(1, 2)).double().clamp(min=1.0)
    contrast = (1 + signs[:, 0] * (share * mse).sqrt() / spread).clamp(0.25, 1.75)
    brightness = (signs[:, 1] * ((1 - share) * mse).sqrt() / 255.0).clamp(-0.5, 0.5)
    tone = _round(torch.stack([brightness, contrast], dim=1))
    tone[~applied] = float("nan")
    return tone


def _sample_erase(batch: int, policy: AugmentPolicy, generator: torch.Generator) -> torch.Tensor:
    """torchvision's RandomErasing distribution, as fractions of the side, shrunk to fit (no retries)."""
    area = torch.empty(batch, dtype=torch.float64).uniform_(*policy.erase_scale, generator=generator)
    log_ratio = torch.empty(batch, dtype=torch.float64).uniform_(math.log(policy.erase_ratio[0]),
                                                                 math.log(policy.erase_ratio[1]), generator=generator)
    height = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
    width = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
    top = torch.rand(batch, generator=generator, dtype=torch.float64) * (1 - height)
    left = torch.rand(batch, generator=generator, dtype=torch.float64) * (1 - width)
    applied = torch.rand(batch, generator=generator) < policy.erase_p
    erase = _round(torch.stack([top, left, height, width], dim=1))
    erase[~applied] = float("nan")
    return erase


def sample(images: torch.Tensor, policy: AugmentPolicy, out_size: int, generator: torch.Generator
           ) -> tuple[torch.Tensor, AugParams]:
    """Draw one augmentation per image of uint8 [B, S, S, 3] and apply it → (float [B, 3, out, out], params).

    Parameters are drawn stage by stage (the tone change is sized on the image it is applied to) and
    rounded to their stored form before use. The source frame is the images' size; the reference size
    for translations is ``out_size``.
    """
    batch, size = len(images), images.shape[1]
    params = _empty(batch, policy)
    params.crop = _sample_crop(batch, size, policy, generator)
    params.flip = torch.rand(batch, generator=generator) < policy.flip
    x = _crop(images, params, out_size, None)
    if policy.randaugment_ops:
        params.ops, params.magnitudes = _sample_ops(batch, policy, out_size, generator)
        x = apply_ops(x, params.ops, params.magnitudes, out_size)
    if policy.tone_psnr:
        params.tone = _sample_tone(x, policy, generator)
        x = _tone(x, params.tone)
    pixels = x.float().div_(255.0)
    if policy.erase_p > 0:
        params.erase = _sample_erase(batch, policy, generator)
        pixels = _erase(pixels, params.erase, policy.erase_fill)
    return pixels, params

