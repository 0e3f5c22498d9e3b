"""One trial's stage DAG: (reinforcement →) student training → evaluation, each a cached stage.

Stage keys chain: the training key includes the fingerprints of its datasets (and the reinforced
dataset's key); the eval key includes the training key and the suite. The trial opens each stage's
inputs once and hands them down. A trial whose stages are all cached costs a few file reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config.recipe import Recipe
from workbench.data.reinforced.dataset import ReinforcedDataset
from workbench.data.reinforced.released import released_key
from workbench.evaluate.lineage import transfer_scores
from workbench.evaluate.spec import load_suite
from workbench.evaluate.stage import run_eval_stage
from workbench.reinforce.plan import reinforce_key
from workbench.reinforce.stage import REINFORCE, reinforce
from workbench.stages.cache import StageResult
from workbench.study.lineage import recipe_lineage
from workbench.teachers.fit import load_teacher
from workbench.teachers.zoo import load_zoo
from workbench.train.stage import run_train_stage, train_key
from workbench.train.trainer import Distillation, Reporter
from workbench.workspace import Workspace


@dataclass
class TrialOutcome:
    metrics: dict[str, float]
    chance: dict[str, float]
    stderr: dict[str, float]
    trained: StageResult
    evaluated: StageResult
    upstream: list[StageResult] = field(default_factory=list)
    """Stages the student trained on (the reinforced dataset)."""
    lineage: dict = field(default_factory=dict)
    """What the student, its teachers and its captioners trained on, and which tasks it never saw
    (``workbench.study.lineage``); ``metrics['transfer']`` averages the unseen tasks."""

    @property
    def stages(self) -> list[StageResult]:
        return [*self.upstream, self.trained, self.evaluated]

    @property
    def train_dir(self) -> Path:
        return self.trained.path

    @property
    def eval_dir(self) -> Path:
        return self.evaluated.path

    @property
    def stage_keys(self) -> dict[str, str]:
        return {s.stage: s.key for s in self.stages}

    @property
    def all_hits(self) -> bool:
        return all(s.hit for s in self.stages)


def distillation(recipe: Recipe, ws: Workspace, progress: bool = True) -> tuple[Distillation, StageResult]:
    """Build (or find) ``recipe``'s reinforced dataset and open what its student learns from: the dataset
    and, for online distillation, the loader of its teachers."""
    reinforced = reinforce(recipe, ws, progress)

    def load_teachers() -> tuple:
        zoo = load_zoo(recipe.reinforce.zoo, recipe.data.holdout)
        return tuple(load_teacher(name, ws, zoo) for name in recipe.distilled_teachers)

    stage = StageResult(REINFORCE.name, reinforced.key, reinforced.path, reinforced.hit)
    return Distillation(reinforced.key, reinforced.dataset, load_teachers), stage


def released_distillation(recipe: Recipe) -> Distillation:
    """What a student of released shards (``data.reinforced``) learns from: no stage builds them."""
    dataset = ReinforcedDataset.released(recipe.data.reinforced)
    return Distillation(released_key(recipe.data.reinforced, dataset.shards), dataset)


def trial_distillation(recipe: Recipe, ws: Workspace, progress: bool = True
                       ) -> tuple[Distillation | None, list[StageResult]]:
    """What ``recipe``'s student distils from (None: plain CLIP), and the stages that built it."""
    if recipe.reinforce.teachers:
        distilled, reinforced = distillation(recipe, ws, progress)
        return distilled, [reinforced]
    if recipe.data.reinforced is not None:
        return released_distillation(recipe), []
    return None, []


def stored_key(recipe: Recipe, ws: Workspace) -> str | None:
    """The key of the reinforced data ``recipe``'s student distils from (ours or released); None: plain."""
    if recipe.data.reinforced is not None:
        return released_key(recipe.data.reinforced)
    return reinforce_key(recipe, ws) if recipe.reinforce.teachers else None


def planned_train_key(recipe: Recipe, ws: Workspace) -> str:
    """The student's key from specs alone, building nothing (for plans and reports)."""
    return train_key(recipe, ws, stored_key(recipe, ws))


def run_trial_stages(recipe: Recipe, ws: Workspace, reporter: Reporter | None = None,
                     objective: str | None = None, progress: bool = True) -> TrialOutcome:
    """(Reinforce or reuse,) train (or reuse) and evaluate (or reuse) one recipe; datasets must be built."""
    distilled, upstream = trial_distillation(recipe, ws, progress)
    trained = run_train_stage(recipe, ws, reporter, objective, progress, distilled)
    evaluated = run_eval_stage(recipe, ws, trained)
    result = json.loads((evaluated.path / "eval.json").read_text())
    lineage, transfer = trial_lineage(recipe, result)
    return TrialOutcome(result["metrics"] | transfer[0], result["chance"] | transfer[1],
                        result["stderr"] | transfer[2], trained, evaluated, upstream, lineage)


def trial_lineage(recipe: Recipe, result: dict) -> tuple[dict, tuple[dict, dict, dict]]:
    """The recipe's lineage against its suite, and its ``transfer`` score (metrics, chance, stderr)."""
    suite, lineage = load_suite(recipe.eval.suite), recipe_lineage(recipe)
    return lineage.to_dict(suite), transfer_scores(result, suite, lineage)
