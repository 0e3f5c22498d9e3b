"""clipart-web: openclipart's ~8.1k PNGs, captioned from folder path and file title — the noisy
"web" base set. Titles carry author names and numbering ("2_dead_frogs_lumen_desig_01.png"); authors
are found by frequency: a token that follows at least three different first words and never starts a
title is a name, not content."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from workbench.data.obtain import debian_package_root
from workbench.data.shards import Sample
from workbench.data.sources._common import Skip, load_image, ordered_map
from workbench.workspace import Workspace

NAME = "clipart-web"
VERSION = 1
EVAL_FRACTION = 0.2
EVAL_ONLY = False
PACKAGES = ["openclipart-png"]
MAX_SIDE = 224
ROOT = Path("usr/share/openclipart/png")


def title_tokens(stem: str) -> list[str]:
    """Lower-case word tokens of a file title, with numbers and one-letter debris removed."""
    words = re.split(r"[\s_\-.,()]+", stem.lower())
    return [w for w in words if w and not w.isdigit() and len(w) > 1 and re.search(r"[a-z]", w)]


def find_author_tokens(titles: list[list[str]]) -> set[str]:
    first_words: dict[str, set[str]] = defaultdict(set)
    ever_first: set[str] = set()
    for tokens in titles:
        if not tokens:
            continue
        ever_first.add(tokens[0])
        for token in tokens[1:]:
            first_words[token].add(tokens[0])
    return {t for t, firsts in first_words.items() if len(firsts) >= 3 and t not in ever_first}


def make_caption(tokens: list[str], authors: set[str], folders: list[str]) -> str:
    title = " ".join(t for t in tokens if t not in authors)
    place = ", ".join(f.replace("_", " ") for f in reversed(folders))
    return f"{title}, {place}" if title else place


def _load(item: tuple[str, Path, str, dict, str]) -> Sample | str:
    uid, path, caption, classes, group = item
    try:
        image = load_image(path, MAX_SIDE)
    except Skip as skip:
        return str(skip)
    return Sample(uid=uid, image=image, caption=caption, source=NAME, classes=classes, group=group)


def samples(ws: Workspace, limit: int | None = None, skipped: dict | None = None) -> Iterator[Sample]:
    base = debian_package_root(PACKAGES[0], ws) / ROOT
    paths = sorted(p for p in base.rglob("*.png") if p.is_file())
    titles = [title_tokens(p.stem) for p in paths]
    authors = find_author_tokens(titles)
    items = []
    for path, tokens in zip(paths, titles):
        folders = [f for f in path.relative_to(base).parent.parts]
        if not folders:
            folders = ["unsorted"]
        classes = {"category": folders[0].replace("_", " ")}
        if len(folders) > 1:
            classes["subcategory"] = "/".join(folders[:2]).replace("_", " ")
        uid = str(path.relative_to(base))
        items.append((uid, path, make_caption(tokens, authors, folders), classes, uid))
    if limit is not None:
        items = items[::max(1, len(items) // limit)][:limit]
    for result in ordered_map(_load, items):
        if isinstance(result, str):
            if skipped is not None:
                skipped[result] = skipped.get(result, 0) + 1
            continue
        yield result
