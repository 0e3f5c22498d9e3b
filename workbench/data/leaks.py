"""The leak check, on the built data: decode every split, hash its pixels, and look for held-out images
in training — inside each dataset and across datasets.

Roles: ``train`` is the train split less its validation slice (what a ``data.holdout`` run trains on),
``validation`` the slice, ``eval`` the eval split. A held-out image (validation or eval) whose decoded pixels
equal a training image of the same dataset is a leak, and the build's content grouping promises there is
none. Equal perceptual hashes (near-duplicates) and matches across datasets are counted and reported: a
clip-art student trained on a picture that tuxpaint holds out makes tuxpaint's task less of a transfer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


from workbench.data.shards import in_validation, iter_split, near_hash, pixel_hash, read_manifest
from workbench.stages.progress import progress_bar

HELD_OUT = ("validation", "eval")


@dataclass
class RoleHashes:
    pixels: set[str] = field(default_factory=set)
    near: set[str] = field(default_factory=set)

    def add(self, image) -> None:
        self.pixels.add(pixel_hash(image))
        self.near.add(near_hash(image))


def role_hashes(dataset_dir: Path, progress: bool = False) -> dict[str, RoleHashes]:
    """Pixel and perceptual hashes of each role's decoded images (roles absent from the data are empty)."""
    roles = {role: RoleHashes() for role in ("train", *HELD_OUT)}
    manifest = read_manifest(dataset_dir)
    for split in manifest["splits"]:
        samples = iter_split(dataset_dir, split)
        for sample in progress_bar(samples, desc=f"hash {manifest['name']} {split}", total=manifest["splits"][split]["count"],
                                   enabled=progress):
            role = "eval" if split == "eval" else "validation" if in_validation(sample.group) else "train"
            roles[role].add(sample.image.convert("RGB"))
    return roles


@dataclass
class Overlap:
    held_out: str   # "dataset/role"
    train: str      # "dataset/train"
    pixels: int     # held-out images whose exact pixels are in training
    near: int       # held-out perceptual hashes found in training


def check_leaks(dataset_dirs: dict[str, Path], progress: bool = False) -> list[Overlap]:
    """Every (held-out role, training role) pair of the given datasets, same dataset first."""
    hashes = {name: role_hashes(path, progress) for name, path in dataset_dirs.items()}
    overlaps = []
    for name, roles in hashes.items():
        for role in HELD_OUT:
            if not roles[role].pixels:
                continue
            for other, other_roles in hashes.items():
                train = other_roles["train"]
                if not train.pixels:
                    continue
                overlaps.append(Overlap(f"{name}/{role}", f"{other}/train",
                                        len(roles[role].pixels & train.pixels), len(roles[role].near & train.near)))
    overlaps.sort(key=lambda o: (o.held_out.split("/")[0] != o.train.split("/")[0], o.held_out, o.train))
    return overlaps


def leaks(overlaps: list[Overlap]) -> list[Overlap]:
    """The overlaps that break the guarantee: a held-out image's exact pixels in its own dataset's training."""
    return [o for o in overlaps if o.held_out.split("/")[0] == o.train.split("/")[0] and o.pixels]


def render_overlaps(overlaps: list[Overlap]) -> str:
    lines = [f"{'held out':<26} {'training':<22} {'same pixels':>11} {'near-dup':>9}"]
    lines += [f"{o.held_out:<26} {o.train:<22} {o.pixels:>11} {o.near:>9}" for o in overlaps]
    return "\n".join(lines)
