"""The ``captions`` stage: S synthetic captions per image of a split, from one captioner.

One artifact per (captioner key, images, S, decoding): ``captions.jsonl`` (one ``{"uid", "captions"}``
line per image), so captions of several captioners combine later by uid (the released DataCompDR
shards keep one ``syn_text`` list per captioner the same way). Generation runs in chunks of images,
each stored in the stage's partial folder as it finishes: a killed run resumes at its last chunk, and
each chunk's sampling is seeded by its position, so a resumed run writes what an uninterrupted one would.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from workbench.captioners.decode import Beam, TopK, TopP
from workbench.data.arrays import load_split_arrays
from workbench.stages.cache import StageCache
from workbench.stages.progress import progress_bar
from workbench.stages.registry import register_stage
from workbench.threads import FIT_THREADS, pinned_threads

CAPTIONS = register_stage("captions", version=1)
CHUNK = 256
"""Images per resumable chunk."""


@dataclass
class CaptionSet:
    """One captioner's captions of a split."""

    name: str
    key: str
    path: Path
    hit: bool
    summary: dict
    """summary.json: images, captions kept, duplicates and empty captions dropped, seconds."""

    def captions(self) -> dict[str, list[str]]:
        return read_captions(self.path / "captions.jsonl")


def read_captions(path: Path) -> dict[str, list[str]]:
    """uid → captions, from a ``captions.jsonl``."""
    rows = (json.loads(line) for line in Path(path).read_text().splitlines() if line.strip())
    return {row["uid"]: row["captions"] for row in rows}


def clean(raw: Sequence[str]) -> tuple[list[str], int, int]:
    """One image's captions with empty ones and repeats dropped (first kept); returns (kept, duplicates,
    empty). Decoding already cut them at end-of-text and tidied whitespace."""
    kept: list[str] = []
    duplicates = empty = 0
    for caption in raw:
        caption = " ".join(caption.split())
        if not caption:
            empty += 1
        elif caption in kept:
            duplicates += 1
        else:
            kept.append(caption)
    return kept, duplicates, empty


def chunked(partial: Path, rows: int, compute: Callable[[int, int], list], desc: str, progress: bool) -> list:
    """``compute(start, stop)`` for consecutive chunks of ``CHUNK`` rows, each stored as JSON under
    ``partial`` when done; chunks already there are read, not computed again."""
    chunk = CHUNK
    partial.mkdir(parents=True, exist_ok=True)
    out: list = []
    bar = progress_bar(total=rows, desc=desc, unit=" images", enabled=progress, leave=False)
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        path = partial / f"chunk-{start:08d}.json"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(compute(start, stop)))
            tmp.rename(path)
        out += json.loads(path.read_text())
        bar.update(stop - start)
    bar.close()
    return out


def select_images(count: int, max_images: int | None, seed: int) -> np.ndarray:
    """Indices of the images to caption: all, or a seeded subset (in split order)."""
    if max_images is None or max_images >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).permutation(count)[:max_images])


def captions_key(captioner_key: str, fingerprint: str, dataset: str, split: str, samples: int,
                 decoding: TopP | TopK | Beam, max_images: int | None, seed: int, batch_size: int) -> str:
    """Batch and chunk sizes are part of it: a batch draws its samples from its chunk's generator."""
    config = {"dataset": dataset, "split": split, "samples": samples, "decoding": decoding.model_dump(mode="json"),
              "max_images": max_images, "seed": seed, "batch_size": batch_size, "chunk": CHUNK}
    return CAPTIONS.key(config, {"captioner": captioner_key, dataset: fingerprint})


def build_captions(captioner, images: np.ndarray, uids: Sequence[str], samples: int, decoding: TopP | TopK | Beam,
                   seed: int, batch_size: int, partial: Path, out: Path, progress: bool) -> dict:
    """Caption ``images`` (uint8 [N, S, S, 3] at the captioner's size) into ``out/captions.jsonl``."""
    started = time.perf_counter()

    def compute(start: int, stop: int) -> list:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + start)
        rows = []
        for first in range(start, stop, batch_size):
            batch = images[first:min(stop, first + batch_size)]
            pixels = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div_(255.0)
            for raw in captioner.caption(pixels, decoding, samples, generator):
                kept, duplicates, empty = clean(raw)
                rows.append({"captions": kept, "duplicates": duplicates, "empty": empty})
        return rows

    rows = chunked(partial, len(uids), compute, f"captions {captioner.name}", progress)
    with open(out / "captions.jsonl", "w") as handle:
        for uid, row in zip(uids, rows):
            handle.write(json.dumps({"uid": uid, "captions": row["captions"]}) + "\n")
    summary = {"captioner": captioner.name, "captioner_key": captioner.key, "images": len(rows),
               "samples": samples, "decoding": decoding.model_dump(mode="json"),
               "captions": sum(len(r["captions"]) for r in rows), "duplicates": sum(r["duplicates"] for r in rows),
               "empty": sum(r["empty"] for r in rows), "seconds": round(time.perf_counter() - started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def caption_split(captioner, ws, dataset: str, split: str, samples: int, decoding: TopP | TopK | Beam,
                  max_images: int | None = None, seed: int = 0, batch_size: int = 64,
                  progress: bool = True) -> CaptionSet:
    """The ``captions`` stage for one loaded captioner (built, or found in the cache)."""
    arrays = load_split_arrays(ws.dataset_dir(dataset), split, captioner.image_size, progress=progress)
    keep = select_images(len(arrays), max_images, seed)
    key = captions_key(captioner.key, arrays.fingerprint, dataset, split, samples, decoding, max_images, seed,
                       batch_size)
    cache = StageCache(ws.cache_dir)

    def build(out: Path) -> None:
        with pinned_threads(FIT_THREADS):
            build_captions(captioner, arrays.images[keep], [arrays.uids[i] for i in keep], samples, decoding, seed,
                           batch_size, cache.partial_dir(CAPTIONS.name, key), out, progress)

    result = cache.get_or_build(CAPTIONS.name, key, build)
    return CaptionSet(captioner.name, key, result.path, result.hit,
                      json.loads((result.path / "summary.json").read_text()))
