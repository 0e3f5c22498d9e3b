"""emoji: Google's emoji from the emoji-datasource-google npm package — name as caption, category and
subcategory as classes; 64 px PNGs."""

from __future__ import annotations

import json
from typing import Iterator

from workbench.data.obtain import npm_package_root
from workbench.data.shards import Sample
from workbench.data.sources._common import Skip, load_image
from workbench.workspace import Workspace

NAME = "emoji"
VERSION = 1
EVAL_FRACTION = 0.3
EVAL_ONLY = False
PACKAGES = ["npm:emoji-datasource-google@16.0.0"]
NPM_NAME, NPM_VERSION = "emoji-datasource-google", "16.0.0"


def caption_of(entry: dict) -> str:
    name = entry.get("name") or entry.get("short_name", "").replace("_", " ").replace("-", " ")
    return name.lower().strip()


def samples(ws: Workspace, limit: int | None = None, skipped: dict | None = None) -> Iterator[Sample]:
    root = npm_package_root(NPM_NAME, NPM_VERSION, ws)
    entries = sorted(json.loads((root / "emoji.json").read_text()), key=lambda e: e["unified"])
    entries = [e for e in entries if e.get("has_img_google") and caption_of(e)]
    if limit is not None:
        entries = entries[::max(1, len(entries) // limit)][:limit]
    for entry in entries:
        try:
            image = load_image(root / "img" / "google" / "64" / entry["image"], 64)
        except Skip as skip:
            if skipped is not None:
                skipped[str(skip)] = skipped.get(str(skip), 0) + 1
            continue
        yield Sample(uid=entry["unified"], image=image, caption=caption_of(entry), source=NAME,
                     classes={"category": entry["category"].lower(), "subcategory": entry["subcategory"]},
                     group=entry["unified"])
