"""A captioner fitted once on the shapes set (micro-coca-xs, ~100 steps: seconds on one core), a second
set with the same images in another caption style, and a registry over both."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from workbench.captioners.fit import fit_captioner
from workbench.captioners.spec import load_registry
from workbench.data.shards import iter_split, write_dataset
from workbench.workspace import Workspace

REGISTRY = """
captioners:
  shapes:
    kind: pretrain
    model: micro-coca-xs
    data: [shapes]
    fit: {{steps: {steps}, batch_size: 32, lr: 3.0e-3, warmup_steps: 10, log_every: 10, eval_every: 50,
           eval_samples: 48, checkpoint_every: 50, augment: {{enabled: false}}}}
  shapes-fancy:
    kind: finetune
    parent: shapes
    data: [shapes-fancy]
    fit: {{steps: 4, batch_size: 16, lr: 1.0e-4, warmup_steps: 1, log_every: 2, eval_every: 2, eval_samples: 16,
           checkpoint_every: 2}}
"""


def fancy_caption(caption: str) -> str:
    """"a red circle on the left" → "There is a red circle at the left!" (new words and punctuation)."""
    return "There is " + caption.replace(" on the ", " at the ") + "!"


def add_fancy_set(ws: Workspace, shapes_dir: Path) -> None:
    samples = [replace(s, caption=fancy_caption(s.caption)) for split in ("train", "eval")
               for s in iter_split(shapes_dir, split)]
    write_dataset(ws.dataset_dir("shapes-fancy"), "shapes-fancy", samples, eval_fraction=0.25)


def make_workspace(root: Path, shapes_root: Path) -> Workspace:
    ws = Workspace.resolve(root).ensure()
    (ws.data_dir / "shapes").symlink_to(shapes_root / "data" / "shapes", target_is_directory=True)
    return ws


def write_registry(path: Path, steps: int = 100) -> Path:
    path.write_text(REGISTRY.format(steps=steps))
    return path


@pytest.fixture(scope="session")
def fancy_root(shapes_root: Path, tmp_path_factory) -> Path:
    """A data folder holding the shapes-fancy set (built once)."""
    root = tmp_path_factory.mktemp("fancy")
    ws = Workspace.resolve(root).ensure()
    add_fancy_set(ws, shapes_root / "data" / "shapes")
    return root / "data" / "shapes-fancy"


@pytest.fixture(scope="session")
def fitted(shapes_root: Path, fancy_root: Path, tmp_path_factory):
    """(workspace, registry) with the ``shapes`` captioner fitted."""
    root = tmp_path_factory.mktemp("captioners")
    ws = make_workspace(root / "ws", shapes_root)
    (ws.data_dir / "shapes-fancy").symlink_to(fancy_root, target_is_directory=True)
    registry = load_registry(write_registry(root / "captioners.yaml"))
    fit_captioner("shapes", ws, registry, progress=False)
    return ws, registry


@pytest.fixture
def tiny_registry(tmp_path: Path):
    """The same registry with a 3-step pretrain: for tests of the stage mechanics."""
    return load_registry(write_registry(tmp_path / "captioners.yaml", steps=3))


@pytest.fixture
def both_ws(shapes_ws: Workspace, fancy_root: Path) -> Workspace:
    """A fresh workspace with the shapes and shapes-fancy sets."""
    (shapes_ws.data_dir / "shapes-fancy").symlink_to(fancy_root, target_is_directory=True)
    return shapes_ws
