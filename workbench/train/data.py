"""The training set in memory and a deterministic batch stream over it.

Batch ``step`` is a pure function of (seed, step): epoch permutations and augmentation parameters come
from generators seeded by the step, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from workbench.augment.crop import apply_crop, full_image_params, sample_crop_params
from workbench.augment.policy import resolve_policy, sample
from workbench.config.recipe import AugmentConfig
from workbench.data.arrays import load_training_arrays
from workbench.workspace import Workspace


def _generator(*parts: int) -> torch.Generator:
    seed = 0
    for part in parts:
        seed = (seed * 1_000_003 + int(part)) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


@dataclass
class TrainingSet:
    images: torch.Tensor  # uint8 [N, S, S, 3]
    captions: list[str]
    tokens: torch.Tensor  # [N, context] — tokenised once: BPE in Python costs ~7% of a micro step
    fingerprints: dict[str, str]

    def __len__(self) -> int:
        return len(self.captions)


def load_training_set(ws: Workspace, datasets: list[str], size: int, seed: int, tokenizer,
                      max_samples: int | None = None, progress: bool = True, holdout: bool = False) -> TrainingSet:
    """Concatenate the train splits of ``datasets`` (decoded at ``size`` px; without the validation slice
    if ``holdout``), optionally capped."""
    images, captions, fingerprints = [], [], {}
    for name in datasets:
        arrays = load_training_arrays(ws.dataset_dir(name), size, holdout, progress=progress)
        images.append(arrays.images)
        captions.extend(arrays.captions)
        fingerprints[name] = arrays.fingerprint
    stacked = np.concatenate(images) if len(images) > 1 else np.array(images[0])  # writable copy
    keep = capped_rows(len(captions), max_samples, seed)
    if len(keep) < len(captions):
        stacked = stacked[keep]
        captions = [captions[i] for i in keep]
    return TrainingSet(torch.from_numpy(stacked), captions, tokenize_all(tokenizer, captions), fingerprints)


def capped_rows(count: int, cap: int | None, seed: int) -> np.ndarray:
    """Sorted rows kept under ``data.max_train_samples``: a seeded subset of ``cap`` rows, or all of them."""
    if cap is None or cap >= count:
        return np.arange(count)
    return np.sort(torch.randperm(count, generator=_generator(seed, 7)).numpy()[:cap])


def tokenize_all(tokenizer, texts: list[str], chunk: int = 4096) -> torch.Tensor:
    """Token ids [len(texts), context], tokenised in chunks (one call on every caption would hold all
    intermediate lists at once)."""
    return torch.cat([tokenizer(texts[i:i + chunk]) for i in range(0, len(texts), chunk)])


class EpochOrder:
    """Sample indices of batch ``step``: positions [step·B, (step+1)·B) of an endless sequence of seeded
    epoch permutations (the last permutation is kept: consecutive steps mostly share an epoch)."""

    def __init__(self, size: int, batch_size: int, seed: int):
        if batch_size > size:
            raise ValueError(f"batch size {batch_size} exceeds the {size} training samples")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self._epoch, self._order = -1, None

    def indices(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(sample indices, epoch of each position)."""
        positions = torch.arange(step * self.batch_size, (step + 1) * self.batch_size)
        epochs, offsets = positions // self.size, positions % self.size
        out = torch.empty_like(positions)
        for epoch in epochs.unique().tolist():
            if epoch != self._epoch:
                self._epoch, self._order = epoch, torch.randperm(self.size, generator=_generator(self.seed, 1, epoch))
            mask = epochs == epoch
            out[mask] = self._order[offsets[mask]]
        return out, epochs

    def epochs_at(self, step: int) -> float:
        """Epochs completed after ``step`` batches."""
        return step * self.batch_size / self.size


class BatchStream:
    """Batch ``step`` of the training set, cropped by the recipe's augmentation."""

    def __init__(self, data: TrainingSet, batch_size: int, seed: int, out_size: int, augment: AugmentConfig):
        self.order = EpochOrder(len(data), batch_size, seed)
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.out_size, self.augment = out_size, augment

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented pixels [B, 3, out, out] in [0, 1] and their caption tokens."""
        indices, _ = self.order.indices(step)
        images = self.data.images[indices]
        size = images.shape[1]
        if self.augment.enabled and self.augment.policy is not None:
            pixels, _ = sample(images, resolve_policy(self.augment.policy), self.out_size,
                               _generator(self.seed, 2, step))
            return pixels, self.data.tokens[indices]
        if self.augment.enabled:
            params = sample_crop_params(len(indices), size, self.augment.crop_scale, self.augment.crop_ratio,
                                        self.augment.flip, _generator(self.seed, 2, step))
        else:
            params = full_image_params(len(indices), size)
        return apply_crop(images, params, self.out_size), self.data.tokens[indices]

    def epochs_at(self, step: int) -> float:
        return self.order.epochs_at(step)
