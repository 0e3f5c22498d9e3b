"""RandAugment's operations, applied to a batch whose samples each drew their own op and magnitude.

The op list, its order and the magnitude space are torchvision's ``RandAugment`` (and the order the
released DataCompDR ``paug.json`` indexes); each op does what torchvision's does (tests/augment/test_ops.py
compares them). ``apply_ops`` computes them per family with per-image magnitudes — a few calls per
batch however many distinct (op, magnitude) pairs it holds.
"""

from __future__ import annotations

import math

import torch
import torchvision.transforms.v2.functional as F

OP_NAMES = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
            "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness"}
FILL = [128.0, 128.0, 128.0]
"""Grey where geometric ops uncover the canvas (torchvision fills black; clip art sits on white)."""


def magnitude_of(op: str, magnitude_bin: int, bins: int, size: int) -> float:
    """The unsigned magnitude of ``op`` at ``magnitude_bin`` of ``bins`` for a ``size`` px image."""
    fraction = magnitude_bin / (bins - 1)
    if op in ("ShearX", "ShearY"):
        return 0.3 * fraction
    if op in ("TranslateX", "TranslateY"):
        return 150.0 / 331.0 * size * fraction
    if op == "Rotate":
        return 30.0 * fraction
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        return 0.9 * fraction
    if op == "Posterize":
        return float(8 - round(magnitude_bin / ((bins - 1) / 4)))
    if op == "Solarize":
        return 255.0 * (1 - fraction)
    return 0.0


def scale_magnitude(op: str, magnitude: float, size: int, reference_size: int) -> float:
    """Translations are stored in pixels of the size they were drawn at; replay at another size scales them."""
    if op in ("TranslateX", "TranslateY") and size != reference_size:
        return magnitude * size / reference_size
    return magnitude


GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
BLENDS = ("Brightness", "Color", "Contrast", "Sharpness")


def _geometric(images: torch.Tensor, ops: list[str], magnitudes: torch.Tensor) -> torch.Tensor:
    """Shears (about the top-left corner), translations and rotations (about the centre), one per image,
    as a single nearest-neighbour ``grid_sample``; uncovered pixels get the grey ``FILL``."""
    n, size = len(images), images.shape[-1]
    inverse = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)  # output pixel → input pixel
    centre = size / 2
    for i, (op, m) in enumerate(zip(ops, magnitudes.tolist())):
        if op == "ShearX":
            inverse[i, 0, 1] = m
        elif op == "ShearY":
            inverse[i, 1, 0] = m
        elif op == "TranslateX":
            inverse[i, 0, 2] = -int(m)
        elif op == "TranslateY":
            inverse[i, 1, 2] = -int(m)
        else:  # Rotate, counter-clockwise by m degrees
            a = math.radians(m)
            rotation = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
            inverse[i, :2, :2] = rotation
            inverse[i, :2, 2] = torch.tensor([centre, centre], dtype=torch.float64) - rotation @ torch.tensor(
                [centre, centre], dtype=torch.float64)
    # pixel coordinates → affine_grid's normalised ones (align_corners=False): u = 2x / size − 1
    scale = torch.diag(torch.tensor([2 / size, 2 / size, 1.0], dtype=torch.float64))
    shift = torch.eye(3, dtype=torch.float64)
    shift[:2, 2] = -1
    to_norm = shift @ scale
    theta = (to_norm @ inverse @ torch.linalg.inv(to_norm))[:, :2].float()
    grid = torch.nn.functional.affine_grid(theta, [n, 3, size, size], align_corners=False)
    shifted = images.float() - FILL[0]  # zeros padding becomes the fill
    out = torch.nn.functional.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out.add_(FILL[0]).round_().clamp_(0, 255).to(torch.uint8)


def _gray(images: torch.Tensor) -> torch.Tensor:
    """torchvision's grey [B, 1, H, W] (0.2989 weights, truncated), so the blends match its ops exactly;
    policy._gray is the tone change's own, stored replays depend on each."""
    weights = torch.tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * weights).sum(1, keepdim=True).floor_()


def _blend(images: torch.Tensor, ops: list[str], magnitudes: torch.Tensor) -> torch.Tensor:
    """Brightness, Color, Contrast and Sharpness as torchvision blends them, each image with its own
    factor: out = factor·x + (1 − factor)·degenerate, clamped and truncated to uint8."""
    x = images.float()
    degenerate = torch.empty_like(x)
    kinds = torch.tensor([BLENDS.index(op) for op in ops])
    for kind in kinds.unique().tolist():
        rows = (kinds == kind).nonzero().squeeze(1)
        part = x[rows]
        if BLENDS[kind] == "Brightness":
            degenerate[rows] = 0.0
        elif BLENDS[kind] == "Color":
            degenerate[rows] = _gray(part).expand_as(part)
        elif BLENDS[kind] == "Contrast":
            degenerate[rows] = _gray(part).mean(dim=(1, 2, 3), keepdim=True).expand_as(part)
        else:  # Sharpness: a smoothed copy inside a one-pixel border that stays as it is
            kernel = torch.tensor([[1.0, 1, 1], [1, 5, 1], [1, 1, 1]]).div(13).expand(3, 1, 3, 3)
            smooth = part.clone()
            smooth[..., 1:-1, 1:-1] = torch.nn.functional.conv2d(part, kernel, groups=3).round_()
            degenerate[rows] = smooth
    factor = (1.0 + magnitudes.float()).view(-1, 1, 1, 1)
    return (x * factor + degenerate * (1 - factor)).clamp_(0, 255).to(torch.uint8)


def _pointwise(images: torch.Tensor, ops: list[str], magnitudes: torch.Tensor) -> torch.Tensor:
    """Posterize (keep the top ``bits`` bits) and Solarize (invert at or above a threshold), per image."""
    out = images.clone()
    posterize = torch.tensor([op == "Posterize" for op in ops])
    if posterize.any():
        bits = magnitudes[posterize].long()
        masks = (255 - (2 ** (8 - bits) - 1)).to(torch.uint8).view(-1, 1, 1, 1)
        out[posterize] = images[posterize] & masks
    if (~posterize).any():
        thresholds = magnitudes[~posterize].float().view(-1, 1, 1, 1)
        part = images[~posterize]
        out[~posterize] = torch.where(part.float() >= thresholds, 255 - part, part)
    return out


def apply_ops(images: torch.Tensor, ops: torch.Tensor, magnitudes: torch.Tensor, reference_size: int) -> torch.Tensor:
    """Apply slot after slot: sample i gets ``OP_NAMES[ops[i, j]]`` at ``magnitudes[i, j]``; -1 skips.

    Ops are grouped by family, each family one batched call with per-image magnitudes: geometric ops
    one ``grid_sample``, blends one expression, posterize/solarize one, then AutoContrast and Equalize
    (torchvision's own batched kernels). A batch costs a handful of calls whatever its size.
    """
    out = images.clone()
    size = images.shape[-1]
    for slot in range(ops.shape[1]):
        names = [OP_NAMES[i] if i >= 0 else "Identity" for i in ops[:, slot].tolist()]
        mags = magnitudes[:, slot]
        families = {
            "geometric": lambda n: n in GEOMETRIC, "blend": lambda n: n in BLENDS,
            "pointwise": lambda n: n in ("Posterize", "Solarize"), "AutoContrast": lambda n: n == "AutoContrast",
            "Equalize": lambda n: n == "Equalize"}
        for family, member in families.items():
            rows = [i for i, n in enumerate(names) if member(n)]
            if not rows:
                continue
            index = torch.tensor(rows)
            group = [names[i] for i in rows]
            scaled = torch.tensor([scale_magnitude(n, float(m), size, reference_size)
                                   for n, m in zip(group, mags[index].tolist())], dtype=torch.float64)
            if family == "geometric":
                out[index] = _geometric(out[index], group, scaled)
            elif family == "blend":
                out[index] = _blend(out[index], group, scaled)
            elif family == "pointwise":
                out[index] = _pointwise(out[index], group, scaled)
            elif family == "AutoContrast":
                out[index] = F.autocontrast(out[index])
            else:
                out[index] = F.equalize(out[index])
    return out
