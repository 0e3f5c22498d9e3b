"""``kind: scratch``: an open_clip CLIP larger than the students, trained longer by the student trainer.

Its fit is a student training stage of its own recipe (cached under that stage's key too); it is scored
on its recipe's ``eval.suite``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from workbench.config.resolve import Profile, resolve_recipe
from workbench.teachers.kinds import FittedEntry, TeacherKind, register_kind


class ScratchTeacherSpec(FittedEntry):
    """Its eval suite is the recipe's ``eval.suite``; with ``holdout``, its recipe gets ``data.holdout: true``."""

    kind: Literal["scratch"]
    recipe: str = "clip"
    profile: Profile = "micro"
    set: dict[str, Any] = Field(default_factory=dict)
    """Dotted recipe overrides, as in a study file's ``set``."""


def scratch_recipe(name: str, spec: ScratchTeacherSpec):
    """The student recipe a scratch teacher trains: its ``recipe``/``profile`` with its ``set`` (and
    ``data.holdout`` for a holdout fit)."""
    overrides = [(f"teacher {name}: set", spec.set)]
    if spec.holdout:
        overrides.append((f"teacher {name}: holdout", {"data.holdout": True}))
    return resolve_recipe(spec.recipe, spec.profile, overrides)


@register_kind
class ScratchKind(TeacherKind):
    name = "scratch"
    spec = ScratchTeacherSpec

    def identity(self, name, spec: ScratchTeacherSpec, ws):
        from workbench.train.stage import train_key  # the student trainer (torch)

        recipe = scratch_recipe(name, spec)
        return recipe.identity(), {"train": train_key(recipe, ws)}

    def required_datasets(self, name, spec: ScratchTeacherSpec, ws) -> set[str]:
        from workbench.train.stage import required_inputs  # the student trainer (torch)

        return required_inputs([scratch_recipe(name, spec)])[0]

    def fit(self, name, spec: ScratchTeacherSpec, ws, out: Path, reporter, progress: bool):
        from workbench.train.stage import run_train_stage  # the student trainer (torch)

        recipe = scratch_recipe(name, spec)
        trained = run_train_stage(recipe, ws, reporter, None, progress)
        shutil.copy(trained.path / "model.pt", out / "model.pt")
        fit = json.loads((trained.path / "summary.json").read_text()) | {"train_key": trained.key,
                                                                       "train_hit": trained.hit}
        return fit, recipe.eval.suite

    def load(self, name, spec: ScratchTeacherSpec, artifact: Path):
        from workbench.models.students import load_trained  # torch

        return load_trained(artifact / "model.pt")

    def describe(self, spec: ScratchTeacherSpec) -> str:
        return f"scratch: {spec.recipe}/{spec.profile} " + " ".join(f"{k}={v}" for k, v in spec.set.items())

    def embed_dim(self, name, spec: ScratchTeacherSpec) -> int:
        from workbench.teachers.kinds.openclip import model_embed_dim

        return model_embed_dim(scratch_recipe(name, spec).model.name)

    def lineage(self, name, spec: ScratchTeacherSpec, by: str, of_recipe):
        return of_recipe(scratch_recipe(name, spec), by)

    def fit_estimate(self, name, spec: ScratchTeacherSpec, ws):
        from workbench import estimates  # builds student models to count parameters (torch)

        own = scratch_recipe(name, spec)
        return estimates.trial_seconds(own), f"{own.model.name} from scratch, {own.train.steps} steps"

    def resumable(self, name, spec: ScratchTeacherSpec, ws, cache):
        from workbench.train.stage import TRAIN, train_key  # the student trainer (torch)

        own = scratch_recipe(name, spec)
        return cache.partial_dir(TRAIN.name, train_key(own, ws)), own.train.steps

    def views_per_s(self, name, spec: ScratchTeacherSpec) -> float:
        from workbench import estimates  # builds student models to count parameters (torch)

        model = scratch_recipe(name, spec).model.name
        return estimates.FORWARD_SPEEDUP * estimates.student_samples_per_s(model, 0, estimates.count_if_needed(model))
