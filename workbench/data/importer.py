"""``workbench data import``: the user's own image-text data into the workbench's shard format.

Three inputs: a folder of images each with a same-stem ``.txt`` caption; a CSV or Parquet table with a
path column (relative to the table's folder) and a caption column; existing img2dataset-style webdataset
shards (``*.tar`` holding jpg/png/webp + txt [+ json]). Unreadable images are skipped and counted.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterator, Sequence

from PIL import Image

from workbench.data.shards import Sample, write_dataset
from workbench.data.sources._common import Skip, load_image
from workbench.workspace import Workspace

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
MAX_SIDE = 256


def _from_folder(folder: Path, skipped: dict) -> Iterator[Sample]:
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    for path in images:
        txt = path.with_suffix(".txt")
        if not txt.exists():
            raise ValueError(f"{path}: no caption file {txt.name} beside it")
        uid = str(path.relative_to(folder))
        yield from _load(uid, path, txt.read_text(encoding="utf-8").strip(), {}, skipped)


def _from_table(table: Path, path_column: str, caption_column: str, class_columns: Sequence[str],
                skipped: dict) -> Iterator[Sample]:
    import pandas as pd

    frame = pd.read_parquet(table) if table.suffix == ".parquet" else pd.read_csv(table)
    missing = [c for c in (path_column, caption_column, *class_columns) if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing column(s) {missing}; it has {list(frame.columns)} "
                         f"(choose with --path-column / --caption-column / --class-column)")
    for row in frame.itertuples(index=False):
        record = row._asdict()
        relative = str(record[path_column])
        classes = {c: str(record[c]) for c in class_columns}
        yield from _load(relative, table.parent / relative, str(record[caption_column]), classes, skipped)


def _from_shards(shards: list[Path], skipped: dict) -> Iterator[Sample]:
    import webdataset as wds

    for raw in wds.WebDataset([str(s) for s in shards], shardshuffle=False, empty_check=False):
        key = raw["__key__"]
        image_key = next((k for k in ("jpg", "jpeg", "png", "webp") if k in raw), None)
        if image_key is None or "txt" not in raw:
            skipped["no image or caption"] = skipped.get("no image or caption", 0) + 1
            continue
        meta = json.loads(raw["json"]) if "json" in raw else {}
        uid = str(meta.get("uid") or meta.get("key") or key)
        try:
            image = Image.open(io.BytesIO(raw[image_key]))
            image.load()
        except OSError:
            skipped["unreadable image"] = skipped.get("unreadable image", 0) + 1
            continue
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        yield Sample(uid=uid, image=image, caption=raw["txt"].decode("utf-8").strip(), source="import")


def _load(uid: str, path: Path, caption: str, classes: dict, skipped: dict) -> Iterator[Sample]:
    if not caption:
        skipped["empty caption"] = skipped.get("empty caption", 0) + 1
        return
    try:
        image = load_image(path, MAX_SIDE)
    except Skip as skip:
        skipped[str(skip)] = skipped.get(str(skip), 0) + 1
        return
    yield Sample(uid=uid, image=image, caption=caption, source="import", classes=classes)


def import_dataset(source: Path, name: str, ws: Workspace, eval_fraction: float = 0.1,
                   caption_column: str = "caption", path_column: str = "path",
                   class_columns: Sequence[str] = ()) -> dict:
    from workbench.data.build import SOURCES

    if name in SOURCES:
        raise ValueError(f"--name {name!r} is a built-in dataset; choose another name")
    source = Path(source)
    skipped: dict[str, int] = {}
    if source.is_dir() and list(source.glob("*.tar")):
        samples = _from_shards(sorted(source.glob("*.tar")), skipped)
    elif source.is_dir():
        samples = _from_folder(source, skipped)
    elif source.suffix in (".csv", ".parquet"):
        samples = _from_table(source, path_column, caption_column, class_columns, skipped)
    elif source.suffix == ".tar":
        samples = _from_shards([source], skipped)
    else:
        raise ValueError(f"{source}: expected a folder of images, a .csv/.parquet table, or .tar shards")
    return write_dataset(ws.dataset_dir(name), name, samples, eval_fraction,
                         extra={"source_version": 0, "imported_from": str(source.resolve()), "skipped": skipped})
