"""Decoded, fixed-size copies of a split, cached next to the shards.

Micro students and the eval suite read the same few thousand images hundreds of times; decoding PNGs
each time would dominate a 2-core step. So a split is decoded once per resolution into a uint8 array
(each image fit into a white square, aspect kept) and cached under the dataset's fingerprint.
The ``validation`` split is read as the validation slice of the train split (``shards.in_validation``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.data.shards import VALIDATION, in_validation, iter_split, read_manifest
from workbench.stages.progress import progress_bar


@dataclass
class SplitArrays:
    """One split in memory: images [N, S, S, 3] uint8, captions, uids, class labels per field, and the
    group each sample was split by."""

    images: np.ndarray
    captions: list[str]
    uids: list[str]
    classes: dict[str, list[str]]
    fingerprint: str
    groups: list[str]

    def __len__(self) -> int:
        return len(self.captions)

    def validation_mask(self) -> np.ndarray:
        """Rows in the validation slice (meaningful for a train split)."""
        return np.fromiter((in_validation(g) for g in self.groups), dtype=bool, count=len(self))

    def subset(self, rows: np.ndarray) -> "SplitArrays":
        rows = np.asarray(rows, dtype=np.int64)
        pick = lambda values: [values[i] for i in rows]  # noqa: E731
        return SplitArrays(self.images[rows], pick(self.captions), pick(self.uids),
                           {field: pick(labels) for field, labels in self.classes.items()}, self.fingerprint,
                           pick(self.groups))


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """Resize the longer side to ``size`` and centre on a white square (clip art has no crop-safe border)."""
    image = image.convert("RGB")
    scale = size / max(image.size)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(new, Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.BOX)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(image, ((size - new[0]) // 2, (size - new[1]) // 2))
    return canvas


def load_training_arrays(dataset_dir: Path, size: int, holdout: bool, progress: bool = True) -> SplitArrays:
    """The train split a student trains on: all of it, or (``holdout``) all but the validation slice."""
    train = load_split_arrays(dataset_dir, "train", size, progress)
    return train.subset(np.flatnonzero(~train.validation_mask())) if holdout else train


def load_split_arrays(dataset_dir: Path, split: str, size: int, progress: bool = True) -> SplitArrays:
    """Load (decoding once, then from cache) one split at ``size`` × ``size`` pixels."""
    dataset_dir = Path(dataset_dir)
    if split == VALIDATION:
        train = load_split_arrays(dataset_dir, "train", size, progress)
        return train.subset(np.flatnonzero(train.validation_mask()))
    manifest = read_manifest(dataset_dir)
    cache = dataset_dir / "arrays" / f"{split}-{size}px"
    meta_path = cache / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["fingerprint"] == manifest["fingerprint"] and "groups" in meta:  # no groups: written before them
            images = np.load(cache / "images.npy", mmap_mode="r")
            return SplitArrays(np.asarray(images), meta["captions"], meta["uids"], meta["classes"],
                               meta["fingerprint"], meta["groups"])
    count = manifest["splits"][split]["count"]
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    captions, uids, groups, classes = [], [], [], {}
    samples = iter_split(dataset_dir, split)
    for i, sample in enumerate(progress_bar(samples, total=count, desc=f"decode {manifest['name']}/{split} @{size}px",
                                            enabled=progress, leave=False)):
        images[i] = np.asarray(fit_square(sample.image, size))
        captions.append(sample.caption)
        uids.append(sample.uid)
        groups.append(sample.group or sample.uid)
        for key, label in sample.classes.items():
            classes.setdefault(key, [None] * count)[i] = label
    tmp = cache.with_name(cache.name + f".tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    np.save(tmp / "images.npy", images)
    (tmp / "meta.json").write_text(json.dumps({"fingerprint": manifest["fingerprint"], "captions": captions,
                                               "uids": uids, "groups": groups, "classes": classes}))
    if cache.exists():  # stale (older fingerprint): replace it
        shutil.rmtree(cache, ignore_errors=True)
    try:
        os.replace(tmp, cache)
    except OSError:  # another process committed the same arrays first
        shutil.rmtree(tmp, ignore_errors=True)
    return SplitArrays(images, captions, uids, classes, manifest["fingerprint"], groups)
