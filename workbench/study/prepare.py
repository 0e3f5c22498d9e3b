"""Build every input a set of trials needs before any trial starts.

Done once in the main process: datasets are built (or found) and decoded at the resolutions the
students and the eval suite will read, so parallel workers only ever read finished caches.
"""

from __future__ import annotations

from workbench.config.recipe import Recipe
from workbench.data.arrays import load_split_arrays
from workbench.data.build import ensure_datasets
from workbench.reinforce.stage import reinforce
from workbench.train.stage import required_inputs
from workbench.workspace import Workspace


def prepare_inputs(recipes: list[Recipe], ws: Workspace, progress: bool = True) -> None:
    """Datasets, their decoded arrays, and every distinct reinforced dataset the trials train on
    (reinforcement depends on neither the trial seed nor training knobs: one build serves many trials)."""
    datasets, arrays = required_inputs(recipes)
    ensure_datasets(datasets, ws, progress)
    for name, split, size in sorted(arrays):
        load_split_arrays(ws.dataset_dir(name), split, size, progress=progress)
    distinct = {(tuple(r.data.train), r.data.holdout, r.reinforce.model_dump_json()): r
                for r in recipes if r.reinforce.teachers}
    for recipe in distinct.values():  # what a reinforcement's key depends on: its sets and its section
        reinforce(recipe, ws, progress)
