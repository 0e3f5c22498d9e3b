"""One trial's stage DAG: data builds → student training → evaluation, each a cached stage.

Stage keys chain: the training key includes the fingerprints of its datasets; the eval key includes the
training key and the suite. A trial whose stages are all cached costs a few file reads.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config.recipe import Recipe
from workbench.distributed import rank_and_world
from workbench.study.cache import StageCache, StageResult, stage_key
from workbench.threads import pinned_threads
from workbench.train.trainer import Reporter, train_student
from workbench.workspace import Workspace

TRAIN_VERSION = 2  # 2: pixels normalised as at eval (1 trained on raw [0, 1] pixels)
EVAL_VERSION = 1


@dataclass
class TrialOutcome:
    metrics: dict[str, float]
    chance: dict[str, float]
    stderr: dict[str, float]
    stages: list[StageResult] = field(default_factory=list)
    train_dir: Path | None = None
    eval_dir: Path | None = None
    lineage: dict = field(default_factory=dict)
    """What the student, its teachers and its captioners trained on, and which tasks it never saw
    (``workbench.evaluate.lineage``); ``metrics['transfer']`` averages the unseen tasks."""

    @property
    def stage_keys(self) -> dict[str, str]:
        return {s.stage: s.key for s in self.stages}

    @property
    def all_hits(self) -> bool:
        return all(s.hit for s in self.stages)


def suite_identity(suite_path: str | None) -> dict:
    from workbench.evaluate.spec import load_suite

    return load_suite(suite_path).model_dump(mode="json")


def dataset_fingerprints(ws: Workspace, names: list[str]) -> dict[str, str]:
    from workbench.data.shards import read_manifest

    return {name: read_manifest(ws.dataset_dir(name))["fingerprint"] for name in names}


def train_key(recipe: Recipe, ws: Workspace) -> str:
    config = recipe.identity()
    inputs = dataset_fingerprints(ws, recipe.data.train)
    inputs["suite"] = stage_key("suite", 1, suite_identity(recipe.eval.suite))  # periodic evals are in history
    if recipe.reinforce.teachers:
        from workbench.reinforce.stage import reinforce_key

        inputs["reinforce"] = reinforce_key(recipe, ws)
    return stage_key("train", TRAIN_VERSION, config, inputs)


def eval_key(recipe: Recipe, ws: Workspace, trained: str) -> str:
    suite = suite_identity(recipe.eval.suite)
    return stage_key("eval", EVAL_VERSION, suite, {"train": trained})


def run_train_stage(recipe: Recipe, ws: Workspace, reporter: Reporter | None, objective: str | None,
                    progress: bool) -> StageResult:
    cache = StageCache(ws.cache_dir)
    key = train_key(recipe, ws)
    rank, _ = rank_and_world()
    if rank and not cache.has("train", key):  # under torchrun: rank 0 builds the artifact, the others train beside it
        with tempfile.TemporaryDirectory() as scratch:
            train_student(recipe, ws, Path(scratch), cache.partial_dir("train", key), None, objective, False)
        return StageResult("train", key, cache.path("train", key), hit=False)

    def build(out: Path) -> None:
        (out / "recipe.json").write_text(recipe.model_dump_json(indent=2))
        train_student(recipe, ws, out, cache.partial_dir("train", key), reporter, objective, progress)

    return cache.get_or_build("train", key, build)


def run_eval_stage(recipe: Recipe, ws: Workspace, trained: StageResult) -> StageResult:
    from workbench.evaluate.spec import load_suite
    from workbench.evaluate.suite import run_suite
    from workbench.train.trainer import load_trained

    cache = StageCache(ws.cache_dir)

    def build(out: Path) -> None:
        encoder = load_trained(trained.path / "model.pt")
        with pinned_threads(recipe.train.threads):  # the trial's count, whichever process evaluates
            result = run_suite(encoder, ws, load_suite(recipe.eval.suite))
        (out / "eval.json").write_text(result.to_json())
        (out / "eval.txt").write_text(result.to_table())

    return cache.get_or_build("eval", eval_key(recipe, ws, trained.key), build)


def run_trial_stages(recipe: Recipe, ws: Workspace, reporter: Reporter | None = None,
                     objective: str | None = None, progress: bool = True) -> TrialOutcome:
    """(Reinforce or reuse,) train (or reuse) and evaluate (or reuse) one recipe; datasets must be built."""
    stages = []
    if recipe.reinforce.teachers:
        from workbench.reinforce.stage import STAGE, reinforce

        reinforced = reinforce(recipe, ws, progress)
        stages.append(StageResult(STAGE, reinforced.key, reinforced.path, reinforced.hit))
    trained = run_train_stage(recipe, ws, reporter, objective, progress)
    evaluated = run_eval_stage(recipe, ws, trained)
    result = json.loads((evaluated.path / "eval.json").read_text())
    lineage, transfer = trial_lineage(recipe, result)
    return TrialOutcome(result["metrics"] | transfer[0], result["chance"] | transfer[1],
                        result["stderr"] | transfer[2], stages + [trained, evaluated], trained.path, evaluated.path,
                        lineage)


def trial_lineage(recipe: Recipe, result: dict) -> tuple[dict, tuple[dict, dict, dict]]:
    """The recipe's lineage against its suite, and its ``transfer`` score (metrics, chance, stderr)."""
    from workbench.evaluate.lineage import recipe_lineage, transfer_scores
    from workbench.evaluate.spec import load_suite

    suite, lineage = load_suite(recipe.eval.suite), recipe_lineage(recipe)
    return lineage.to_dict(suite), transfer_scores(result, suite, lineage)
