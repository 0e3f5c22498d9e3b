"""The ``train`` stage: one student trained from one recipe, cached under what it was trained on.

Its key holds the recipe's identity, its datasets' fingerprints, the suite its periodic evals score
and, for a distilled student, the reinforced dataset's key. Its inputs are opened by the caller (the
study's trial plan) and handed in: the stage never builds another stage's artifact.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from workbench.config.recipe import Recipe
from workbench.data.build import dataset_fingerprints
from workbench.distributed import rank_and_world
from workbench.evaluate.spec import load_suite, suite_key
from workbench.models.students import configured_image_size, training_load_size
from workbench.stages.cache import StageCache, StageResult
from workbench.stages.registry import register_stage
from workbench.train.launch import replay_history, train_on_processes
from workbench.train.trainer import Distillation, Reporter, train_student
from workbench.workspace import Workspace

TRAIN = register_stage("train", version=2)  # 2: pixels normalised as at eval (1 trained on raw [0, 1] pixels)


def train_key(recipe: Recipe, ws: Workspace, reinforced: str | None = None) -> str:
    """The key of ``recipe``'s student; ``reinforced`` is the key of the reinforced dataset a distilled
    recipe trains on (``workbench.reinforce.plan.reinforce_key``, or ``released_key`` for released shards,
    whose recipe's ``data.train`` is unused and not fingerprinted)."""
    if recipe.distils != (reinforced is not None):
        raise ValueError("a recipe with teachers is keyed with its reinforced dataset's key, one without is not")
    inputs = {} if recipe.data.reinforced else dataset_fingerprints(ws, recipe.data.train)
    inputs["suite"] = suite_key(recipe.eval.suite)  # periodic evals are in its history
    if reinforced is not None:
        inputs["reinforce"] = reinforced
    return TRAIN.key(recipe.identity(), inputs)


def required_inputs(recipes: list[Recipe]) -> tuple[set[str], set[tuple[str, str, int]]]:
    """Datasets the recipes train and are scored on, and the (dataset, split, size) arrays they decode."""
    datasets: set[str] = set()
    arrays: set[tuple[str, str, int]] = set()
    for recipe in recipes:
        size = configured_image_size(recipe.model.name)
        for name in [] if recipe.data.reinforced else recipe.data.train:  # released shards carry their images
            datasets.add(name)
            arrays.add((name, "train", training_load_size(size)))
        for task in load_suite(recipe.eval.suite).tasks:
            datasets.add(task.dataset)
            arrays.add((task.dataset, task.split, size))
    return datasets, arrays


def run_train_stage(recipe: Recipe, ws: Workspace, reporter: Reporter | None, objective: str | None,
                    progress: bool, distillation: Distillation | None = None) -> StageResult:
    """Train ``recipe`` (or find its student); a distilled recipe needs its opened ``distillation``."""
    cache = StageCache(ws.cache_dir)
    key = train_key(recipe, ws, distillation.key if distillation else None)
    rank, world = rank_and_world()
    if recipe.train.nproc > 1 and world == 1 and not cache.has(TRAIN.name, key):  # a trial: launch its ranks
        train_on_processes(recipe, ws)
        if not cache.has(TRAIN.name, key):
            raise RuntimeError(f"training on {recipe.train.nproc} processes committed no student under {key}")
        replay_history(reporter, cache.path(TRAIN.name, key))
        return StageResult(TRAIN.name, key, cache.path(TRAIN.name, key), hit=False)
    if rank and not cache.has(TRAIN.name, key):  # under torchrun: rank 0 builds the artifact, the others train beside it
        with tempfile.TemporaryDirectory() as scratch:
            train_student(recipe, ws, Path(scratch), cache.partial_dir(TRAIN.name, key), None, objective, False,
                          distillation)
        return StageResult(TRAIN.name, key, cache.path(TRAIN.name, key), hit=False)

    def build(out: Path) -> None:
        (out / "recipe.json").write_text(recipe.model_dump_json(indent=2))
        train_student(recipe, ws, out, cache.partial_dir(TRAIN.name, key), reporter, objective, progress,
                      distillation)

    return cache.get_or_build(TRAIN.name, key, build)
