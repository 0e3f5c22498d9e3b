"""fashion-mnist: the 10k Fashion-MNIST test images (Debian dataset-fashion-mnist); eval only."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from workbench.data.obtain import debian_package_root
from workbench.data.shards import Sample
from workbench.workspace import Workspace

NAME = "fashion-mnist"
VERSION = 1
EVAL_FRACTION = 1.0
EVAL_ONLY = True
PACKAGES = ["dataset-fashion-mnist"]
ROOT = Path("usr/share/datasets/fashion-mnist")
LABELS = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
          "ankle boot"]


def _idx(path: Path, offset: int) -> np.ndarray:
    return np.frombuffer(gzip.decompress(path.read_bytes()), dtype=np.uint8, offset=offset)


def samples(ws: Workspace, limit: int | None = None, skipped: dict | None = None) -> Iterator[Sample]:
    base = debian_package_root(PACKAGES[0], ws) / ROOT
    images = _idx(base / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = _idx(base / "t10k-labels-idx1-ubyte.gz", 8)
    order = range(len(labels)) if limit is None else range(0, len(labels), max(1, len(labels) // limit))
    for count, i in enumerate(order):
        if limit is not None and count >= limit:
            break
        label = LABELS[labels[i]]
        image = Image.fromarray(255 - images[i], mode="L")  # dark garment on white, like the other sets
        yield Sample(uid=f"t10k-{i:05d}", image=image, caption=f"a photo of a {label}", source=NAME,
                     classes={"label": label})
