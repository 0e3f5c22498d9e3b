"""A reinforced dataset on disk: its manifest, its shards, and what training needs to replay them.

``ReinforcedDataset.open(folder)`` reads a stage artifact of ours; ``ReinforcedDataset.datacompdr(shards)``
wraps released DataCompDR / DFNDR shards in the same interface, so one reader serves both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from workbench.augment.policy import PRESETS, AugmentPolicy, resolve_policy
from workbench.config.recipe import ReleasedData
from workbench.data.reinforced.released import released_shards
from workbench.data.reinforced.shards import CorruptShardError, ReinforcedSample, file_sha256, read_shard

MANIFEST = "manifest.json"


@dataclass
class ReinforcedDataset:
    shards: list[Path]
    policy: AugmentPolicy
    teacher_dims: list[int] | None
    """Width of each teacher's block of the concatenated embeddings (None: unknown, one block)."""
    source_size: int | None
    """Square frame the crop boxes are in (None: the original image's pixels, as in DataCompDR)."""
    reference_size: int
    """Output size the augmentations were drawn at (translations scale from it)."""
    dtype: str | None
    manifest: dict

    @classmethod
    def open(cls, folder: Path) -> "ReinforcedDataset":
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"no reinforced dataset at {folder} (missing {MANIFEST})")
        manifest = json.loads(path.read_text())
        return cls([folder / s["name"] for s in manifest["shards"]], AugmentPolicy(**manifest["policy"]),
                   [t["dim"] for t in manifest["teachers"]], manifest["source_size"], manifest["reference_size"],
                   manifest["dtype"], manifest)

    @classmethod
    def datacompdr(cls, shards: list[Path], teacher_dims: list[int] | None = None, reference_size: int = 224,
                   policy: AugmentPolicy = PRESETS["datacompdr"]) -> "ReinforcedDataset":
        """Released shards: crop boxes in original-image pixels, RandAugment drawn at 224 px (their
        config), fp32 ``npz``; DataCompDR-12M's teachers are two ViT-L-14s (``teacher_dims=[768, 768]``)."""
        return cls([Path(s) for s in shards], policy, teacher_dims, None, reference_size, None,
                   {"source": "datacompdr", "shards": [{"name": Path(s).name} for s in shards]})

    @classmethod
    def released(cls, config: ReleasedData) -> "ReinforcedDataset":
        """The shards a recipe's ``data.reinforced`` names (patterns expanded, in sorted order)."""
        return cls.datacompdr(released_shards(config), [t.dim for t in config.teachers], config.reference_size,
                              resolve_policy(config.augment))

    def samples(self) -> Iterator[ReinforcedSample]:
        for shard in self.shards:
            yield from read_shard(shard, self.dtype)

    def __len__(self) -> int:
        return int(self.manifest.get("samples", 0))

    def verify(self) -> None:
        """Check every shard against its manifest checksum; raise naming the first that differs."""
        for shard, entry in zip(self.shards, self.manifest["shards"]):
            if "sha256" in entry and file_sha256(shard) != entry["sha256"]:
                raise CorruptShardError(f"{shard}: checksum differs from the manifest (changed or truncated)")

