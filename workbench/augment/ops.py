"""RandAugment's operations, applied to a batch whose samples each drew their own op and magnitude.

The op list, its order and the magnitude space are torchvision's ``RandAugment`` (and the order the
released DataCompDR ``paug.json`` indexes). Samples that drew the same (op, magnitude) are applied
as one batched torchvision call; with a fixed magnitude bin and a random sign that is at most 27
calls per op slot, whatever the batch size.
"""

from __future__ import annotations

import math

import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode

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


def apply_op(images: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
    """One op on uint8 [B, 3, H, W] (as torchvision's RandAugment applies it)."""
    nearest = InterpolationMode.NEAREST
    if op == "Identity":
        return images
    if op in ("ShearX", "ShearY"):
        angle = math.degrees(math.atan(magnitude))
        shear = [angle, 0.0] if op == "ShearX" else [0.0, angle]
        return F.affine(images, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, interpolation=nearest,
                        fill=FILL, center=[0, 0])
    if op in ("TranslateX", "TranslateY"):
        shift = [int(magnitude), 0] if op == "TranslateX" else [0, int(magnitude)]
        return F.affine(images, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0], interpolation=nearest,
                        fill=FILL)
    if op == "Rotate":
        return F.rotate(images, magnitude, interpolation=nearest, fill=FILL)
    if op == "Brightness":
        return F.adjust_brightness(images, 1.0 + magnitude)
    if op == "Color":
        return F.adjust_saturation(images, 1.0 + magnitude)
    if op == "Contrast":
        return F.adjust_contrast(images, 1.0 + magnitude)
    if op == "Sharpness":
        return F.adjust_sharpness(images, 1.0 + magnitude)
    if op == "Posterize":
        return F.posterize(images, int(magnitude))
    if op == "Solarize":
        return F.solarize(images, magnitude)
    if op == "AutoContrast":
        return F.autocontrast(images)
    if op == "Equalize":
        return F.equalize(images)
    raise ValueError(f"unknown RandAugment op {op!r}")


def scale_magnitude(op: str, magnitude: float, size: int, reference_size: int) -> float:
    """Translations are stored in pixels of the size they were drawn at; replay at another size scales them."""
    if op in ("TranslateX", "TranslateY") and size != reference_size:
        return magnitude * size / reference_size
    return magnitude


def apply_ops(images: torch.Tensor, ops: torch.Tensor, magnitudes: torch.Tensor, reference_size: int) -> torch.Tensor:
    """Apply slot after slot: sample i gets ``OP_NAMES[ops[i, j]]`` at ``magnitudes[i, j]``; -1 skips."""
    out = images.clone()
    size = images.shape[-1]
    for slot in range(ops.shape[1]):
        pairs = torch.stack([ops[:, slot].double(), magnitudes[:, slot]], dim=1)
        for op_index, magnitude in torch.unique(pairs[ops[:, slot] >= 0], dim=0).tolist():
            op = OP_NAMES[int(op_index)]
            if op == "Identity":
                continue
            rows = ((ops[:, slot] == int(op_index)) & (magnitudes[:, slot] == magnitude)).nonzero().squeeze(1)
            out[rows] = apply_op(out[rows], op, scale_magnitude(op, magnitude, size, reference_size))
    return out
