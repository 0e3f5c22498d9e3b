"""Build every input a set of trials needs before any trial starts.

Done once in the main process: datasets are built (or found) and decoded at the resolutions the
students and the eval suite will read, so parallel workers only ever read finished caches.
"""

from __future__ import annotations

from workbench.config.recipe import Recipe
from workbench.workspace import Workspace


def required_inputs(recipes: list[Recipe]) -> tuple[set[str], set[tuple[str, str, int]]]:
    """Datasets to build, and (dataset, split, size) arrays to decode."""
    from workbench.evaluate.spec import load_suite
    from workbench.models.students import configured_image_size, training_load_size

    datasets: set[str] = set()
    arrays: set[tuple[str, str, int]] = set()
    for recipe in recipes:
        size = configured_image_size(recipe.model.name)
        for name in recipe.data.train:
            datasets.add(name)
            arrays.add((name, "train", training_load_size(size)))
        for task in load_suite(recipe.eval.suite).tasks:
            datasets.add(task.dataset)
            arrays.add((task.dataset, task.split, size))
    return datasets, arrays


def ensure_datasets(names, ws: Workspace, progress: bool = True) -> None:
    """Build each named dataset that is not there yet; built or imported ones are used as they are."""
    from workbench.data.build import build_dataset

    for name in sorted(names):
        if not (ws.dataset_dir(name) / "manifest.json").exists():
            build_dataset(name, ws, progress=progress)


def prepare_inputs(recipes: list[Recipe], ws: Workspace, progress: bool = True) -> None:
    """Datasets, their decoded arrays, and every distinct reinforced dataset the trials train on
    (reinforcement depends on neither the trial seed nor training knobs: one build serves many trials)."""
    from workbench.data.arrays import load_split_arrays
    from workbench.reinforce.stage import reinforce, reinforce_key

    datasets, arrays = required_inputs(recipes)
    ensure_datasets(datasets, ws, progress)
    for name, split, size in sorted(arrays):
        load_split_arrays(ws.dataset_dir(name), split, size, progress=progress)
    built: set[str] = set()
    for recipe in recipes:
        if recipe.reinforce.teachers and (key := reinforce_key(recipe, ws)) not in built:
            reinforce(recipe, ws, progress)
            built.add(key)
