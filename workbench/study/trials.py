"""Expand a study into its trials: the product of its axes (a zip axis counts once) times its seeds."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from workbench.config.recipe import Recipe
from workbench.config.resolve import resolve_recipe
from workbench.config.study import Study, lowest
from workbench.evaluate.spec import suite_identity


@dataclass(frozen=True)
class TrialSpec:
    """One grid point: which value of each axis, which seed, and the recipe that results."""

    axis_indices: dict[str, int]
    axis_labels: dict[str, str]
    seed: int
    overrides: dict[str, Any]
    recipe: Recipe

    @cached_property
    def point_id(self) -> str:
        """Stable name of the grid point and of what it resolves to.

        The same axes, seed, recipe, eval suite and stage versions give the same id on every run; a
        point whose recipe or suite changed (a new profile default, an edited `set`), or whose training
        or evaluation code changed meaning (a stage version bump), is a new point, so its stale result is
        neither reused nor reported.
        """
        from workbench.evaluate import stage as evaluation  # the stages load torch; `study validate` must not
        from workbench.train import stage as training

        payload = json.dumps({"axes": self.axis_labels, "seed": self.seed,
                              "recipe": {"name": self.recipe.name, **self.recipe.identity()},
                              "suite": suite_identity(self.recipe.eval.suite),
                              "versions": {"train": training.TRAIN.version, "eval": evaluation.EVAL.version}},
                             sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    @property
    def title(self) -> str:
        parts = [f"{name}={label}" for name, label in self.axis_labels.items()]
        return " ".join(parts + [f"seed={self.seed}"])


def study_layers(study: Study, path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path}: set", study.set)] if study.set else []


def build_trial(study: Study, path: str | Path, profile: str, axis_indices: dict[str, int], seed: int,
                extra: dict[str, Any] | None = None) -> TrialSpec:
    """Resolve one point; ``extra`` holds values a search sampler suggested."""
    layers = study_layers(study, path)
    overrides: dict[str, Any] = dict(study.set)
    for name, index in axis_indices.items():
        axis_overrides = study.axes[name].overrides(index)
        layers.append((f"{path}: axes.{name} value #{index + 1}", axis_overrides))
        overrides.update(axis_overrides)
    if extra:
        layers.append((f"{path}: search", extra))
        overrides.update(extra)
    layers.append((f"{path}: seeds", {"seed": seed}))
    recipe = resolve_recipe(study.recipe, profile, layers)
    labels = {name: study.axes[name].display_labels[i] for name, i in axis_indices.items()}
    return TrialSpec(axis_indices, labels, seed, overrides, recipe)


def expand_grid(study: Study, path: str | Path, profile: str | None = None) -> list[TrialSpec]:
    """Every grid point in a stable order (axes in file order, then seeds)."""
    profile = profile or study.profile
    names = list(study.axes)
    ranges = [range(study.axes[name].size) for name in names]
    trials = []
    for combo in itertools.product(*ranges):
        for seed in study.seed_list:
            trials.append(build_trial(study, path, profile, dict(zip(names, combo)), seed))
    return trials


def validate_points(study: Study, path: str | Path, profile: str | None = None) -> int:
    """Resolve every grid point's recipe once, with the first seed (a seed cannot make a recipe invalid:
    it is any integer); return the grid's trial count (points × seeds). Call after ``load_study``."""
    profile = profile or study.profile
    first_seed = study.seeds[0] if isinstance(study.seeds, list) else 0
    names = list(study.axes)
    corner = {key: lowest(dim) for key, dim in study.search.space.items()} if study.search else None
    for combo in itertools.product(*(range(study.axes[name].size) for name in names)):
        build_trial(study, path, profile, dict(zip(names, combo)), first_seed, corner)  # a search's lowest point
    return study.grid_size


def point_ids(study: Study, path: str | Path, profile: str | None = None) -> set[str] | None:
    """The ids of the grid points the file defines now (None for a search: its points are the sampler's)."""
    return None if study.search else {spec.point_id for spec in expand_grid(study, path, profile)}
