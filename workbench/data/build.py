"""``workbench data build``: turn a real source into shards, once; later calls are hits.

A build is keyed by the source module's VERSION and the sample limit; the manifest records what was
skipped and why, the packages read, and a content fingerprint that downstream stage keys include.
"""

from __future__ import annotations

import time
from types import ModuleType


from workbench.data.shards import LAYOUT_VERSION, read_manifest, write_dataset
from workbench.data.sources import clipart_web, digits, emoji, fashion_mnist, glyphs, tuxpaint
from workbench.workspace import Workspace
from workbench.stages.progress import progress_bar

SOURCES: dict[str, ModuleType] = {module.NAME: module for module in
                                  (clipart_web, tuxpaint, emoji, glyphs, fashion_mnist, digits)}


def source(name: str) -> ModuleType:
    if name not in SOURCES:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)} "
                       f"(or import your own with `workbench data import`)")
    return SOURCES[name]


def is_current(manifest: dict, module: ModuleType, limit: int | None) -> bool:
    return (manifest.get("source_version") == module.VERSION and manifest.get("limit") == limit
            and manifest.get("layout_version") == LAYOUT_VERSION)


def build_dataset(name: str, ws: Workspace, force: bool = False, limit: int | None = None,
                  progress: bool = True) -> dict:
    """Build dataset ``name`` into the workspace (or return its manifest if already built alike)."""
    module = source(name)
    out = ws.dataset_dir(name)
    if not force and (out / "manifest.json").exists():
        manifest = read_manifest(out)
        if is_current(manifest, module, limit):
            return manifest
    skipped: dict[str, int] = {}
    started = time.perf_counter()
    samples = progress_bar(module.samples(ws, limit=limit, skipped=skipped), desc=f"build {name}",
                           unit=" samples", enabled=progress)
    extra = {"source_version": module.VERSION, "limit": limit, "skipped": skipped, "packages": module.PACKAGES}
    manifest = write_dataset(out, name, samples, module.EVAL_FRACTION, module.EVAL_ONLY, extra=extra,
                             near_duplicates=getattr(module, "NEAR_DUPLICATES", True))
    manifest["build_seconds"] = round(time.perf_counter() - started, 1)
    return manifest


def is_built(ws: Workspace, name: str) -> bool:
    """Whether dataset ``name`` is built (or imported) in the workspace: its manifest is written last."""
    return (ws.dataset_dir(name) / "manifest.json").exists()


def ensure_datasets(names, ws: Workspace, progress: bool = True) -> None:
    """Build each named dataset that is not there yet; built or imported ones are used as they are."""
    for name in sorted(names):
        if not is_built(ws, name):
            build_dataset(name, ws, progress=progress)


def dataset_fingerprints(ws: Workspace, names) -> dict[str, str]:
    """Each built dataset's content fingerprint: what every downstream stage key includes."""
    return {name: read_manifest(ws.dataset_dir(name))["fingerprint"] for name in names}


def list_datasets(ws: Workspace) -> list[dict]:
    """Every known or imported dataset: built?, samples per split, fingerprint."""
    names = list(SOURCES) + sorted(p.name for p in ws.data_dir.glob("*")
                                   if p.is_dir() and p.name not in SOURCES and not p.name.startswith("."))
    rows = []
    for name in names:
        path = ws.dataset_dir(name)
        if (path / "manifest.json").exists():
            manifest = read_manifest(path)
            splits = {s: v["count"] for s, v in manifest["splits"].items()}
            rows.append({"name": name, "built": True, **splits, "fingerprint": manifest["fingerprint"],
                         "skipped": sum(manifest.get("skipped", {}).values())})
        else:
            rows.append({"name": name, "built": False})
    return rows
