"""Fixtures: a workspace holding the toy dataset; a fresh in-memory eval cache per test."""

from __future__ import annotations

import pytest

from workbench.data.shards import write_dataset
from workbench.evaluate.data import clear_cache
from workbench.workspace import Workspace

from .fakes import toy_samples


@pytest.fixture(scope="session")
def ws(tmp_path_factory) -> Workspace:
    ws = Workspace.resolve(root=tmp_path_factory.mktemp("wb")).ensure()
    write_dataset(ws.dataset_dir("toy"), "toy", toy_samples(), eval_fraction=0.5, eval_only=True)
    return ws


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()
