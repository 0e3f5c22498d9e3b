"""digits: scikit-learn's 1,797 8×8 handwritten digits, dark on white, upscaled to 32 px; eval only."""

from __future__ import annotations

from typing import Iterator

import numpy as np
from PIL import Image

from workbench.data.shards import Sample
from workbench.workspace import Workspace

NAME = "digits"
VERSION = 1
EVAL_FRACTION = 1.0
EVAL_ONLY = True
PACKAGES = ["pypi:scikit-learn"]
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def samples(ws: Workspace, limit: int | None = None, skipped: dict | None = None) -> Iterator[Sample]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    count = len(digits.target) if limit is None else min(limit, len(digits.target))
    for i in range(count):
        pixels = (255 - digits.images[i] * (255 / 16)).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, mode="L").resize((32, 32), Image.Resampling.NEAREST)
        word = WORDS[digits.target[i]]
        yield Sample(uid=f"digit-{i:04d}", image=image, caption=f"the digit {word}", source=NAME,
                     classes={"label": word})
