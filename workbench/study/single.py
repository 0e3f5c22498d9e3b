"""``workbench train``: one recipe with dotted overrides, through the same cached stages as a study."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from workbench.config.overrides import ConfigError, check_key
from workbench.config.recipe import Recipe
from workbench.config.resolve import resolve_recipe
from workbench.distributed import rank_and_world
from workbench.evaluate.spec import load_suite
from workbench.evaluate.lineage import render
from workbench.study.lineage import recipe_lineage
from workbench.study.pipeline import run_trial_stages, trial_distillation
from workbench.study.prepare import prepare_inputs
from workbench.train.stage import run_train_stage
from workbench.workspace import Workspace


def parse_sets(sets: tuple[str, ...]) -> dict:
    overrides = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item}", "expected KEY=VALUE, e.g. train.lr=3e-4")
        try:
            check_key(key)
        except KeyError as error:
            raise ConfigError(f"--set {item}", error.args[0]) from None
        overrides[key] = yaml.safe_load(value)
    return overrides


def train_single(recipe_name: str, profile: str, sets: tuple[str, ...], ws: Workspace) -> str:
    return train_recipe(resolve_recipe(recipe_name, profile, [("--set", parse_sets(sets))]), ws)


def train_resolved(path: Path, ws: Workspace) -> str:
    """Train exactly the resolved recipe in ``path`` (a trial's ``config/resolved.yaml``)."""
    try:
        recipe = Recipe.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as error:
        raise ConfigError(str(path), f"not a resolved recipe: {error.errors()[0]['msg']} at "
                                     f"{'.'.join(map(str, error.errors()[0]['loc']))}") from None
    return train_recipe(recipe, ws)


def train_recipe(recipe: Recipe, ws: Workspace) -> str:
    """Train (or reuse) and evaluate ``recipe``; under torchrun, ranks other than 0 only train."""
    prepare_inputs([recipe], ws)
    if rank := rank_and_world()[0]:  # under torchrun: rank 0 writes, evaluates and reports
        distilled = trial_distillation(recipe, ws, False)[0]
        run_train_stage(recipe, ws, None, None, False, distilled)
        return f"rank {rank}: trained its share of every batch"
    outcome = run_trial_stages(recipe, ws)
    hits = ", ".join(f"{s.stage} {'hit' if s.hit else 'built'} ({s.key})" for s in outcome.stages)
    table = (outcome.eval_dir / "eval.txt").read_text()
    return f"{hits}\nmodel: {outcome.train_dir / 'model.pt'}\n{table}\n\n{_lineage(recipe, outcome)}"


def _lineage(recipe, outcome) -> str:
    result = json.loads((outcome.eval_dir / "eval.json").read_text())
    return render(recipe_lineage(recipe), load_suite(recipe.eval.suite), result)
