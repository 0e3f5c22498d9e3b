"""tuxpaint: Tux Paint's ~1k stamps, each with a human-written caption (the first line of the .txt
beside it) — the high-quality, Flickr-like caption set. SVG stamps are rasterised with cairosvg."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterator

from PIL import Image

from workbench.data.obtain import debian_package_root
from workbench.data.shards import Sample
from workbench.data.sources._common import Skip, load_image, ordered_map
from workbench.workspace import Workspace

NAME = "tuxpaint"
VERSION = 1
EVAL_FRACTION = 0.3
EVAL_ONLY = False
PACKAGES = ["tuxpaint-stamps-default"]
MAX_SIDE = 224
ROOT = Path("usr/share/tuxpaint/stamps")


def read_caption(txt: Path) -> str:
    """The default-locale line: the first non-empty line that is not ``locale=...``."""
    for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not re.match(r"^[a-z]{2,3}(_[A-Z]{2})?(\.[a-zA-Z0-9-]+)?(@\w+)?=", line):
            return line
    return ""


def group_of(stem: str) -> str:
    """Variants of one stamp ("frog", "frog-1", "frog_2") share a group and so a split."""
    return re.sub(r"[-_]?\d+$", "", stem)


def _rasterise(path: Path) -> Image.Image:
    import cairosvg

    try:
        png = cairosvg.svg2png(url=str(path), output_width=MAX_SIDE)
    except Exception as error:  # cairosvg raises many types on odd SVGs
        raise Skip(f"svg not rasterised ({type(error).__name__})") from None
    image = Image.open(io.BytesIO(png))
    image.load()
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def _load(item: tuple[str, Path, str, dict, str]) -> Sample | str:
    uid, path, caption, classes, group = item
    try:
        image = _rasterise(path) if path.suffix == ".svg" else load_image(path, MAX_SIDE)
    except Skip as skip:
        return str(skip)
    return Sample(uid=uid, image=image, caption=caption, source=NAME, classes=classes, group=group)


def samples(ws: Workspace, limit: int | None = None, skipped: dict | None = None) -> Iterator[Sample]:
    base = debian_package_root(PACKAGES[0], ws) / ROOT
    items = []
    for path in sorted(p for p in base.rglob("*") if p.suffix in (".png", ".svg")):
        txt = path.with_suffix(".txt")
        caption = read_caption(txt) if txt.exists() else ""
        if not caption:
            if skipped is not None:
                skipped["no caption"] = skipped.get("no caption", 0) + 1
            continue
        relative = path.relative_to(base)
        classes = {"category": relative.parts[0]}
        if len(relative.parts) > 2:
            classes["subcategory"] = "/".join(relative.parts[:2])
        group = str(relative.parent / group_of(path.stem))
        items.append((str(relative), path, caption, classes, group))
    if limit is not None:
        items = items[::max(1, len(items) // limit)][:limit]
    for result in ordered_map(_load, items):
        if isinstance(result, str):
            if skipped is not None:
                skipped[result] = skipped.get(result, 0) + 1
            continue
        yield result
