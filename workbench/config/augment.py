"""The augmentation policy as data: what to sample, the named presets, and how plans describe a policy.

Recipes and study files name a preset or spell out a policy; applying it (torch, torchvision) is
``workbench.augment.policy``'s job, so reading and validating configs never imports those.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from workbench.config.files import Strict

Preset = Literal["weak", "strong", "datacompdr"]
"""Names of the policies in ``PRESETS``."""


class AugmentPolicy(Strict):
    """What to sample. ``weak`` and ``strong`` are presets; any field can be set by itself."""

    crop_scale: tuple[float, float] = (0.08, 1.0)
    """RandomResizedCrop area range (MobileCLIP2 Tab. 15)."""
    crop_ratio: tuple[float, float] = (0.75, 1.3333)
    flip: float = Field(default=0.0, ge=0, le=1)
    """Probability of a horizontal flip; 0 by default (mirrored glyphs and words are other pictures)."""
    randaugment_ops: int = Field(default=0, ge=0)
    """RandAugment ops per image (torchvision's default is 2); 0 disables RandAugment."""
    randaugment_magnitude: int = Field(default=9, ge=0)
    randaugment_bins: int = Field(default=31, ge=2)
    randaugment_p: float = Field(default=1.0, ge=0, le=1)
    tone_psnr: tuple[float, float] | None = None
    """RangeAugment-style brightness/contrast: the change is sized to hit a target PSNR (dB) drawn from
    this range, so its strength is measured on the image rather than fixed per factor. None disables."""
    tone_p: float = Field(default=1.0, ge=0, le=1)
    erase_p: float = Field(default=0.0, ge=0, le=1)
    """Probability of RandomErasing; 0 disables it."""
    erase_scale: tuple[float, float] = (0.02, 0.33)
    erase_ratio: tuple[float, float] = (0.3, 3.3)
    erase_fill: float = Field(default=0.5, ge=0, le=1)
    """Grey level of erased pixels (in [0, 1], before the model's normalisation)."""

    @property
    def stages(self) -> list[str]:
        """The stages with parameters, in pipeline order: the layout of one compressed augmentation."""
        names = ["random_resized_crop"]
        names += ["random_horizontal_flip"] if self.flip > 0 else []
        names += ["rand_augment"] if self.randaugment_ops else []
        names += ["range_augment"] if self.tone_psnr else []
        names += ["random_erase"] if self.erase_p > 0 else []
        return names


PRESETS = {
    # Crops only, half the image or more: the plain-CLIP recipe's augmentation.
    "weak": AugmentPolicy(crop_scale=(0.5, 1.0)),
    # Tab. 15's crop range with RandAugment (2 ops, magnitude 9 of 31 as DataCompDR), a tone change to
    # Tab. 15's RangeAugment target (20–40 dB) half the time, and RandomErasing a quarter of the time.
    "strong": AugmentPolicy(crop_scale=(0.08, 1.0), randaugment_ops=2, tone_psnr=(20.0, 40.0), tone_p=0.5,
                            erase_p=0.25),
    # The released DataCompDR-12M reinforcement: RandomResizedCrop + RandAugment only.
    "datacompdr": AugmentPolicy(crop_scale=(0.08, 1.0), randaugment_ops=2),
}


def describe(policy: str | AugmentPolicy) -> str:
    """A preset's name, or the fields a custom policy sets: what plans and manifests show."""
    if isinstance(policy, str):
        return policy
    fields = policy.model_dump(mode="json", exclude_defaults=True)
    return ", ".join(f"{k} {v}" for k, v in fields.items()) or "default policy"


def resolve_policy(policy: str | AugmentPolicy) -> AugmentPolicy:
    if isinstance(policy, AugmentPolicy):
        return policy
    if policy not in PRESETS:
        raise KeyError(f"unknown augmentation preset {policy!r}; known: {', '.join(PRESETS)}")
    return PRESETS[policy]
