"""The one on-disk format of every dataset: webdataset tar shards plus a manifest.

A dataset folder holds ``manifest.json`` and ``{split}-{index:06d}.tar`` shards. Each sample has
``png`` (RGB, transparency composited on white), ``txt`` (caption) and ``json``
(``uid``, ``source``, ``classes``: a dict of class field → label, ``group``: the key the split hashed).
Splits are ``train`` and ``eval``; classification-only sets have just ``eval``.

A dataset is written into a temporary folder and committed by one atomic rename, so a reader never
sees a half-written dataset.

Splits are drawn per *content group*, not per file: samples whose decoded pixels are identical (the same
picture under two names or folders), or whose small perceptual hash is identical, join one group with the
source's own group (e.g. one glyph's renders). A group never spans splits, and exact pixel duplicates inside
a split collapse to their first sample, so no eval or validation image is ever a training image.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import webdataset as wds

MANIFEST = "manifest.json"
SPLITS = ("train", "eval")
VALIDATION = "validation"
"""A slice of the train split, not a stored split: recipes are tuned on it (with ``data.holdout`` the
student never trains on it), so the eval split is never used to choose anything."""
VALIDATION_SHARE = 0.1
LAYOUT_VERSION = 2
"""Bumped when the split rule changes (2: content groups); a dataset built under another is rebuilt."""


@dataclass
class Sample:
    uid: str
    image: Image.Image
    caption: str
    source: str
    classes: dict[str, str] = field(default_factory=dict)
    group: str = ""  # samples sharing a group land in the same split (e.g. one glyph in many fonts)


def _hashed_unit(salt: str, group: str) -> float:
    """A group key hashed to [0, 1): stable across machines and runs."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{group}".encode()).digest()[:8], "big") / 2**64


def split_of(group: str, eval_fraction: float) -> str:
    """Deterministic split from a hash of the group key."""
    return "eval" if _hashed_unit("workbench-split-v1", group) < eval_fraction else "train"


def in_validation(group: str) -> bool:
    """Whether a train-split group belongs to the validation slice: hashed by group like the splits (renders
    and duplicates of one item stay together), with its own salt so the slice is independent of them."""
    return _hashed_unit("workbench-validation-v1", group) < VALIDATION_SHARE


def shard_key(uid: str) -> str:
    """A webdataset key: no dots (they separate extensions), no slashes; unique via a short hash."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", uid)[:80]
    return f"{safe}_{hashlib.sha1(uid.encode()).hexdigest()[:10]}"


def to_rgb_on_white(image: Image.Image) -> Image.Image:
    """Composite any transparency on white; return RGB."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image.convert("RGB")


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


class DatasetWriter:
    """Writes samples into per-split shards in a temporary folder; ``commit`` renames it into place."""

    def __init__(self, out_dir: Path, name: str, samples_per_shard: int = 2000):
        self.out_dir = Path(out_dir)
        self.name = name
        self.tmp_dir = self.out_dir.with_name(f".{self.out_dir.name}.tmp-{os.getpid()}")
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True)
        self.samples_per_shard = samples_per_shard
        self._writers: dict[str, wds.ShardWriter] = {}
        self.counts: dict[str, int] = {}
        self._hash = hashlib.sha256()

    def write(self, sample: Sample, split: str, png: bytes | None = None) -> None:
        """Append ``sample`` to ``split``; ``png`` is its already-encoded image, if the caller has it."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if split not in self._writers:
            import webdataset as wds  # imports torch: here, not at the top, so listing dataset names does not

            pattern = str(self.tmp_dir / f"{split}-%06d.tar")
            self._writers[split] = wds.ShardWriter(pattern, maxcount=self.samples_per_shard, verbose=0)
        png = png if png is not None else encode_png(to_rgb_on_white(sample.image))
        meta = {"uid": sample.uid, "source": sample.source, "classes": sample.classes,
                "group": sample.group or sample.uid}
        self._writers[split].write({"__key__": shard_key(sample.uid), "png": png, "txt": sample.caption,
                                    "json": meta})
        self.counts[split] = self.counts.get(split, 0) + 1
        self._hash.update(json.dumps([split, meta, sample.caption]).encode())
        self._hash.update(hashlib.sha256(png).digest())

    def commit(self, extra: dict | None = None) -> dict:
        """Close the shards, write the manifest (with a content fingerprint), rename into place."""
        for writer in self._writers.values():
            writer.close()
        manifest = {
            "name": self.name,
            "fingerprint": self._hash.hexdigest()[:16],
            "splits": {
                split: {"count": count,
                        "shards": sorted(p.name for p in self.tmp_dir.glob(f"{split}-*.tar"))}
                for split, count in sorted(self.counts.items())
            },
            "layout_version": LAYOUT_VERSION,
            **(extra or {}),
        }
        (self.tmp_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if self.out_dir.exists():
            old = self.out_dir.with_name(f".{self.out_dir.name}.old-{os.getpid()}")
            os.replace(self.out_dir, old)
            os.replace(self.tmp_dir, self.out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.out_dir.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp_dir, self.out_dir)
        return manifest

    def abort(self) -> None:
        for writer in self._writers.values():
            writer.close()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def read_manifest(dataset_dir: Path) -> dict:
    path = Path(dataset_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"no dataset at {dataset_dir} (missing {MANIFEST}); "
                                f"build it with `workbench data build {Path(dataset_dir).name}`")
    return json.loads(path.read_text())


def split_shards(dataset_dir: Path, split: str) -> list[str]:
    manifest = read_manifest(dataset_dir)
    if split not in manifest["splits"]:
        raise KeyError(f"dataset {manifest['name']!r} has no {split!r} split "
                       f"(it has {sorted(manifest['splits'])})")
    return [str(Path(dataset_dir) / name) for name in manifest["splits"][split]["shards"]]


def iter_split(dataset_dir: Path, split: str) -> Iterator[Sample]:
    """Yield the samples of one split in stored order (deterministic)."""
    import webdataset as wds  # imports torch: here, not at the top, so listing dataset names does not

    dataset = wds.WebDataset(split_shards(dataset_dir, split), shardshuffle=False, empty_check=False)
    for raw in dataset:
        meta = json.loads(raw["json"])
        image = Image.open(io.BytesIO(raw["png"]))
        image.load()
        yield Sample(uid=meta["uid"], image=image, caption=raw["txt"].decode("utf-8"),
                     source=meta["source"], classes=meta.get("classes", {}), group=meta.get("group", ""))


def pixel_hash(image: Image.Image) -> str:
    """Identity of the decoded RGB pixels (and size): the same picture whatever file or format held it."""
    return hashlib.sha256(f"{image.size}".encode() + image.tobytes()).hexdigest()[:24]


def near_hash(image: Image.Image) -> str:
    """A 64-bit difference hash (grey 9×8 area means, adjacent-cell order): equal for resized copies."""
    grey = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BOX), dtype=np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


@dataclass
class _Encoded:
    sample: Sample   # its image is dropped once encoded, to bound memory
    png: bytes
    pixels: str
    near: str


class _Groups:
    """Union-find over string keys; a component is named by its smallest key (stable across runs)."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: str, b: str) -> bool:
        a, b = self.find(a), self.find(b)
        if a == b:
            return False
        if b < a:
            a, b = b, a
        self.parent[b] = a
        return True


def _join_equal(groups: _Groups, items: list[_Encoded], field_name: str) -> int:
    """Join the groups of items whose ``field_name`` hashes are equal; returns the merges made."""
    first: dict[str, str] = {}
    merges = 0
    for item in items:
        own = item.sample.group or item.sample.uid
        merges += groups.union(first.setdefault(getattr(item, field_name), own), own)
    return merges


def content_groups(items: list[_Encoded], near_duplicates: bool) -> tuple[list[str], dict[str, int]]:
    """Each item's content group: its own group joined with every item of equal pixels and, with
    ``near_duplicates``, of equal perceptual hash. Returns the groups and the merges each rule made (the
    perceptual rule is counted even where it does not group, so a manifest says what it would add)."""
    groups = _Groups()
    merges = {"pixel_duplicates": _join_equal(groups, items, "pixels")}
    if near_duplicates:
        merges["near_duplicates"] = _join_equal(groups, items, "near")
    else:
        merges["near_duplicates_not_grouped"] = _join_equal(copy.deepcopy(groups), items, "near")
    return [groups.find(item.sample.group or item.sample.uid) for item in items], merges


def write_dataset(out_dir: Path, name: str, samples: Iterable[Sample], eval_fraction: float,
                  eval_only: bool = False, extra: dict | None = None, samples_per_shard: int = 2000,
                  near_duplicates: bool = True) -> dict:
    """Split samples by content group (see the module docstring) and write them as one committed dataset.

    The manifest's ``content`` entry counts what grouping did: groups merged by identical pixels and by the
    perceptual hash, and duplicates collapsed inside a split.
    """
    encoded = []
    for sample in samples:
        rgb = to_rgb_on_white(sample.image)
        encoded.append(_Encoded(replace(sample, image=None), encode_png(rgb), pixel_hash(rgb), near_hash(rgb)))
    groups, merges = content_groups(encoded, near_duplicates)
    writer = DatasetWriter(out_dir, name, samples_per_shard)
    written: set[str] = set()
    collapsed = 0
    try:
        for item, group in zip(encoded, groups):
            split = "eval" if eval_only else split_of(group, eval_fraction)
            if item.pixels in written:  # one group, hence one split: an exact copy adds nothing
                collapsed += 1
                continue
            written.add(item.pixels)
            writer.write(replace(item.sample, group=group), split, item.png)
    except BaseException:
        writer.abort()
        raise
    content = {**merges, "collapsed_duplicates": collapsed, "near_duplicate_grouping": near_duplicates}
    return writer.commit({**(extra or {}), "content": content})
