"""Every RandAugment op, computed per family with per-image magnitudes, against torchvision's own."""

import math

import pytest
import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode

from workbench.augment.ops import FILL, OP_NAMES, SIGNED, apply_ops, magnitude_of


def torchvision_op(images: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
    """One op on a batch, as torchvision's RandAugment applies it (grey fill)."""
    nearest = InterpolationMode.NEAREST
    if op in ("ShearX", "ShearY"):
        angle = math.degrees(math.atan(magnitude))
        return F.affine(images, angle=0.0, translate=[0, 0], scale=1.0, shear=[angle, 0.0] if op == "ShearX" else
                        [0.0, angle], interpolation=nearest, fill=FILL, center=[0, 0])
    if op in ("TranslateX", "TranslateY"):
        shift = [int(magnitude), 0] if op == "TranslateX" else [0, int(magnitude)]
        return F.affine(images, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0], interpolation=nearest,
                        fill=FILL)
    calls = {"Identity": lambda: images, "Rotate": lambda: F.rotate(images, magnitude, interpolation=nearest, fill=FILL),
             "Brightness": lambda: F.adjust_brightness(images, 1 + magnitude),
             "Color": lambda: F.adjust_saturation(images, 1 + magnitude),
             "Contrast": lambda: F.adjust_contrast(images, 1 + magnitude),
             "Sharpness": lambda: F.adjust_sharpness(images, 1 + magnitude),
             "Posterize": lambda: F.posterize(images, int(magnitude)), "Solarize": lambda: F.solarize(images, magnitude),
             "AutoContrast": lambda: F.autocontrast(images), "Equalize": lambda: F.equalize(images)}
    return calls[op]()


@pytest.mark.parametrize("size", [32, 48])
@pytest.mark.parametrize("op", OP_NAMES)
def test_each_op_matches_torchvision(op, size):
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.interpolate(torch.rand(16, 3, 6, 6, generator=g), size=size, mode="bilinear")
    images = images.mul(255).round().byte()
    for sign in ((1, -1) if op in SIGNED else (1,)):
        magnitude = sign * magnitude_of(op, 9, 31, size)
        ours = apply_ops(images, torch.full((16, 1), OP_NAMES.index(op)),
                         torch.full((16, 1), magnitude, dtype=torch.float64), size)
        theirs = torchvision_op(images, op, magnitude)
        difference = (ours.int() - theirs.int()).abs()
        assert difference.max() <= 1 and (difference > 0).float().mean() < 0.05, (op, sign)  # rounding only
        if op != "Identity":
            assert (ours != images).any()


def test_a_batch_of_mixed_ops_equals_each_image_alone():
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (24, 3, 32, 32), generator=g, dtype=torch.uint8)
    ops = torch.randint(len(OP_NAMES), (24, 2), generator=g)
    signs = torch.randint(2, (24, 2), generator=g) * 2 - 1
    magnitudes = torch.tensor([[magnitude_of(OP_NAMES[o], 9, 31, 32) * (s if OP_NAMES[o] in SIGNED else 1)
                                for o, s in zip(row, signs_row)] for row, signs_row in zip(ops.tolist(), signs.tolist())],
                              dtype=torch.float64)
    batch = apply_ops(images, ops, magnitudes, 32)
    for i in range(24):
        assert torch.equal(batch[i:i + 1], apply_ops(images[i:i + 1], ops[i:i + 1], magnitudes[i:i + 1], 32))
