"""Shared fixtures: a small workspace with a synthetic image-text dataset and a suite over it.

The synthetic "shapes" set (coloured shapes with captions such as "a red circle on the left") lets the
orchestration, training and tracking tests run in seconds; the real offline sources are exercised by
tests/data and by the end-to-end CLI test.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from workbench.data.shards import Sample, write_dataset
from workbench.workspace import Workspace

COLOURS = {"red": (220, 30, 30), "green": (30, 160, 40), "blue": (30, 60, 220), "black": (0, 0, 0)}
SHAPES = ("circle", "square", "triangle")
PLACES = {"left": (4, 20), "right": (36, 20), "top": (20, 4), "bottom": (20, 36)}

SHAPES_SUITE_FILE = Path(__file__).parent / "suites" / "shapes.yaml"  # inside the project, as run requires
SHAPES_SUITE = SHAPES_SUITE_FILE.read_text()


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests (bf16 autocast, nccl, CUDA timing) run where CUDA is (`python -m pytest -m gpu`)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: run `python -m pytest -m gpu` on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def draw_shape(shape: str, colour: str, place: str, jitter: random.Random) -> Image.Image:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # transparent: exercises compositing on white
    draw = ImageDraw.Draw(image)
    x, y = PLACES[place]
    x, y = x + jitter.randint(-3, 3), y + jitter.randint(-3, 3)
    box = (x, y, x + 24, y + 24)
    if shape == "circle":
        draw.ellipse(box, fill=COLOURS[colour])
    elif shape == "square":
        draw.rectangle(box, fill=COLOURS[colour])
    else:
        draw.polygon([(x + 12, y), (x, y + 24), (x + 24, y + 24)], fill=COLOURS[colour])
    return image


def shapes_samples(copies: int = 4):
    jitter = random.Random(0)
    for shape in SHAPES:
        for colour in COLOURS:
            for place in PLACES:
                for copy in range(copies):
                    yield Sample(uid=f"{shape}-{colour}-{place}-{copy}", image=draw_shape(shape, colour, place, jitter),
                                 caption=f"a {colour} {shape} on the {place}", source="shapes",
                                 classes={"shape": shape, "colour": colour}, group=f"{shape}-{colour}-{place}-{copy}")


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory) -> Path:
    """A workspace folder holding the built ``shapes`` dataset (built once)."""
    root = tmp_path_factory.mktemp("shapes-ws")
    ws = Workspace.resolve(root).ensure()
    write_dataset(ws.dataset_dir("shapes"), "shapes", shapes_samples(), eval_fraction=0.25)
    return root


@pytest.fixture
def shapes_ws(shapes_root: Path, tmp_path: Path) -> Workspace:
    """A fresh workspace (own caches, MLflow and Optuna stores) sharing the built shapes dataset."""
    ws = Workspace.resolve(tmp_path / "ws").ensure()
    (ws.data_dir / "shapes").symlink_to(shapes_root / "data" / "shapes", target_is_directory=True)
    return ws


@pytest.fixture
def shapes_suite() -> str:
    return str(SHAPES_SUITE_FILE)


REAL_LIMITS = {"clipart-web": 1200, "glyphs": 1500, "tuxpaint": 400, "emoji": None, "fashion-mnist": 1000,
               "digits": 600}


@pytest.fixture(scope="session")
def real_root(tmp_path_factory) -> Path:
    """A workspace with every real source built from a subset (obtained from Debian/npm as needed)."""
    from workbench.data.build import build_dataset

    root = tmp_path_factory.mktemp("real-ws")
    ws = Workspace.resolve(root).ensure()
    for name, limit in REAL_LIMITS.items():
        build_dataset(name, ws, limit=limit, progress=False)
    return root
