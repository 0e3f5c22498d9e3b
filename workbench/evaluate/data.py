"""Eval data in memory: each split loaded once per process, each task's selection computed once.

The suite runs every few hundred training steps; reading manifests is all a repeat run does on disk.
Selections are seeded and depend only on the data and the task, so every model sees the same items.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from workbench.data.arrays import SplitArrays, load_split_arrays
from workbench.data.shards import MANIFEST, VALIDATION, read_manifest
from workbench.evaluate.spec import RetrievalTask, ZeroShotTask
from workbench.models.encoder import ImageTextEncoder

ArraysKey = tuple[str, str, int, str]  # (dataset dir, split, image size, fingerprint)

_ARRAYS: dict[ArraysKey, SplitArrays] = {}
_SELECTIONS: dict[tuple[ArraysKey, str, int], "TaskData"] = {}


class DatasetMissingError(FileNotFoundError):
    """A task's dataset has not been built."""


@dataclass(frozen=True)
class TaskData:
    key: ArraysKey
    arrays: SplitArrays
    indices: np.ndarray
    """Sorted rows of ``arrays`` the task uses."""


@dataclass(frozen=True)
class ZeroShotData(TaskData):
    labels: np.ndarray
    """Class index of each selected row."""
    classes: list[str]
    """Dataset labels, sorted; index = class index."""
    classnames: list[str]
    """What the prompts say for each class."""


@dataclass(frozen=True)
class RetrievalData(TaskData):
    captions: list[str]


def clear_cache() -> None:
    _ARRAYS.clear()
    _SELECTIONS.clear()


def load_arrays(dataset_dir: Path, split: str, size: int) -> tuple[ArraysKey, SplitArrays]:
    """A split's decoded arrays, from memory when this process has loaded this version before."""
    dataset_dir = Path(dataset_dir)
    if not (dataset_dir / MANIFEST).exists():
        raise DatasetMissingError(f"eval dataset {dataset_dir.name!r} is not built (no {dataset_dir / MANIFEST}); "
                                  f"build it with `workbench data build {dataset_dir.name}`")
    manifest = read_manifest(dataset_dir)
    if (split if split != VALIDATION else "train") not in manifest["splits"]:
        raise ValueError(f"dataset {dataset_dir.name!r} has no {split!r} split (it has {sorted(manifest['splits'])})")
    key = (str(dataset_dir.resolve()), split, size, manifest["fingerprint"])
    if key not in _ARRAYS:
        for stale in [k for k in _ARRAYS if k[:3] == key[:3]]:  # a rebuilt dataset replaces its old copy
            del _ARRAYS[stale]
            for selection in [s for s in _SELECTIONS if s[0] == stale]:
                del _SELECTIONS[selection]
        _ARRAYS[key] = load_split_arrays(dataset_dir, split, size, progress=False)
    return key, _ARRAYS[key]


def prepare_task(task: ZeroShotTask | RetrievalTask, dataset_dir: Path, size: int,
                 seed: int) -> ZeroShotData | RetrievalData:
    key, arrays = load_arrays(dataset_dir, task.split, size)
    cache_key = (key, task.model_dump_json(), seed)
    if cache_key not in _SELECTIONS:
        select = select_zeroshot if isinstance(task, ZeroShotTask) else select_retrieval
        _SELECTIONS[cache_key] = select(key, arrays, task, seed)
    return _SELECTIONS[cache_key]


def _candidate_rows(arrays: SplitArrays, task: ZeroShotTask | RetrievalTask, seed: int) -> list[int]:
    """Rows in a seeded order (one permutation per split size and seed, shared by every task on a split,
    so their picks overlap and images are embedded once), those the task's class filter keeps, then the
    first row of each caption if deduping."""
    rows = np.random.default_rng(seed).permutation(len(arrays)).tolist()
    if task.ref.filtered:
        kept = set(task.ref.rows(arrays.classes, len(arrays), f"task {task.name!r}"))
        rows = [r for r in rows if r in kept]
    if task.dedupe_captions:
        seen: set[str] = set()
        rows = [r for r in rows if arrays.captions[r] not in seen and not seen.add(arrays.captions[r])]
    return rows


def select_zeroshot(key: ArraysKey, arrays: SplitArrays, task: ZeroShotTask, seed: int) -> ZeroShotData:
    """Rows with a label of a kept class: ≥ min_per_class images, the max_classes most frequent,
    at most max_per_class each (seeded)."""
    if task.field not in arrays.classes:
        raise ValueError(f"task {task.name!r}: dataset {task.dataset!r} has no class field {task.field!r} "
                         f"(it has {sorted(arrays.classes)})")
    labels = arrays.classes[task.field]
    rows = [r for r in _candidate_rows(arrays, task, seed) if labels[r] is not None]
    counts = Counter(labels[r] for r in rows)
    unknown = sorted(set(task.classnames) - set(counts))
    if unknown:
        raise ValueError(f"task {task.name!r}: classnames for labels not in the data: {unknown}")
    kept = sorted((c for c, n in counts.items() if n >= task.min_per_class), key=lambda c: (-counts[c], c))
    kept = sorted(kept[:task.max_classes] if task.max_classes else kept)
    if len(kept) < 2:
        raise ValueError(f"task {task.name!r}: {len(kept)} classes have ≥ {task.min_per_class} images; need 2")
    class_index = {c: i for i, c in enumerate(kept)}
    taken: Counter[str] = Counter()
    chosen = []
    for row in rows:
        label = labels[row]
        if label in class_index and (task.max_per_class is None or taken[label] < task.max_per_class):
            taken[label] += 1
            chosen.append(row)
    indices = np.sort(np.asarray(chosen, dtype=np.int64))
    return ZeroShotData(key, arrays, indices,
                        labels=np.asarray([class_index[labels[i]] for i in indices], dtype=np.int64),
                        classes=kept, classnames=[task.classnames.get(c, c.replace("_", " ")) for c in kept])


def select_retrieval(key: ArraysKey, arrays: SplitArrays, task: RetrievalTask, seed: int) -> RetrievalData:
    """Rows in seeded order, one per caption when deduping, the first max_items of them."""
    rows = _candidate_rows(arrays, task, seed)
    indices = np.sort(np.asarray(rows[:task.max_items], dtype=np.int64))
    if len(indices) < 2:
        raise ValueError(f"task {task.name!r}: {len(indices)} items in {task.dataset}/{task.split}; need 2")
    return RetrievalData(key, arrays, indices, captions=[arrays.captions[i] for i in indices])


def encode_images(encoder: ImageTextEncoder, images: np.ndarray, rows: np.ndarray,
                  batch_size: int = 512) -> torch.Tensor:
    """Embed ``images[rows]`` (uint8 [N, S, S, 3]) as [len(rows), D], gathering and converting to
    float [0, 1] CHW one batch at a time (a 224 px teacher would not fit the whole set as floats)."""
    out = []
    for start in range(0, len(rows), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[rows[start:start + batch_size]]))
        out.append(encoder.encode_images(batch.permute(0, 3, 1, 2).float().div_(255)).float())
    return torch.cat(out)


def encode_texts(encoder: ImageTextEncoder, texts: Sequence[str], batch_size: int = 512) -> torch.Tensor:
    return torch.cat([encoder.encode_texts(list(texts[i:i + batch_size])).float()
                      for i in range(0, len(texts), batch_size)])
