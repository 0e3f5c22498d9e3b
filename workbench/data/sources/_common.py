"""Helpers shared by the source modules: bounded image loading and an ordered parallel map."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from PIL import Image

T = TypeVar("T")
R = TypeVar("R")

MAX_SOURCE_PIXELS = 40_000_000
"""Larger images are skipped: a few openclipart PNGs reach 169 MP and a decode peaks near 6 GB."""


class Skip(Exception):
    """A sample left out, with the reason counted in the manifest."""


def load_image(path: Path, max_side: int) -> Image.Image:
    """Open ``path``, refuse huge images before decoding, and shrink to ``max_side`` (aspect kept)."""
    Image.MAX_IMAGE_PIXELS = None  # the size check below replaces PIL's bomb guard
    try:
        image = Image.open(path)
    except (OSError, ValueError) as error:
        raise Skip(f"unreadable image ({type(error).__name__})") from None
    if image.width * image.height > MAX_SOURCE_PIXELS:
        raise Skip(f"over {MAX_SOURCE_PIXELS // 1_000_000} megapixels")
    try:
        image.load()
    except (OSError, ValueError) as error:
        raise Skip(f"unreadable image ({type(error).__name__})") from None
    if max(image.size) > max_side:
        image = image.convert("RGBA") if image.mode in ("P", "LA", "RGBA") else image.convert("RGB")
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def spread_runs(items: list[T], limit: int, run: int) -> list[T]:
    """``limit`` items as evenly spaced runs of ``run`` consecutive items.

    A limited build of a source ordered by class (glyphs by code point, hence by block and script) keeps
    whole neighbourhoods, so the classes it holds keep enough held-out members for the eval suite's
    ``min_per_class``; a plain stride would spread a few members over every class.
    """
    if limit >= len(items):
        return list(items)
    runs = max(1, limit // run)
    size = limit // runs
    starts = [i * (len(items) - size) // max(1, runs - 1) for i in range(runs)] if runs > 1 else [0]
    return [item for start in starts for item in items[start:start + size]]


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> Iterator[R]:
    """``map`` over a process pool, results in input order (so builds stay deterministic)."""
    workers = workers or min(2, os.cpu_count() or 1)
    items = list(items)
    if workers <= 1 or len(items) < 64:
        yield from map(fn, items)
        return
    with mp.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(fn, items, chunksize=16)
