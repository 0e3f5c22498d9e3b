"""The ``eval`` stage: a trained student scored on its recipe's suite, cached under the student's key."""

from __future__ import annotations

from pathlib import Path

from workbench.config.recipe import Recipe
from workbench.evaluate.spec import load_suite, suite_identity
from workbench.evaluate.suite import run_suite
from workbench.models.students import load_trained
from workbench.stages.cache import StageCache, StageResult
from workbench.stages.registry import register_stage
from workbench.threads import pinned_threads
from workbench.workspace import Workspace

EVAL = register_stage("eval", version=1)


def eval_key(recipe: Recipe, trained: str) -> str:
    """The key of ``recipe``'s scores of the student keyed ``trained``."""
    return EVAL.key(suite_identity(recipe.eval.suite), {"train": trained})


def run_eval_stage(recipe: Recipe, ws: Workspace, trained: StageResult) -> StageResult:
    def build(out: Path) -> None:
        encoder = load_trained(trained.path / "model.pt")
        with pinned_threads(recipe.train.threads):  # the trial's count, whichever process evaluates
            result = run_suite(encoder, ws, load_suite(recipe.eval.suite))
        (out / "eval.json").write_text(result.to_json())
        (out / "eval.txt").write_text(result.to_table())

    return StageCache(ws.cache_dir).get_or_build(EVAL.name, eval_key(recipe, trained.key), build)
