"""Teacher kinds: what a zoo entry's ``kind:`` names, and everything that differs between kinds.

Each kind is a ``TeacherKind`` subclass in a module of this package, holding its zoo entry class (the
pydantic spec) and its behaviour: its cache key, its fit (if it is fitted here), how it loads, how it is
described, its embedding size before any fit, its lineage and its plan estimates. ``register_kind``
adds a kind under its name; every module of this package is imported the first time the registry is
read, so a new kind is one new module here (plus its entries in a zoo file).

This package and its kind modules import no torch at module level: ``workbench.teachers.zoo`` (used by
``study validate``) validates entries through the registry. Heavy imports live inside the methods.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from pydantic import BaseModel

from workbench.config.files import Strict
from workbench.config.kinds import KindError, check_new_kind
from workbench.evaluate.lineage import Lineage
from workbench.evaluate.spec import load_suite, suite_key
from workbench.stages.registry import register_stage

if TYPE_CHECKING:
    from workbench.config.recipe import Recipe
    from workbench.stages.cache import StageCache
    from workbench.workspace import Workspace

TEACHER = register_stage("teacher", version=1)
BASE_SETS = ["clipart-web", "glyphs"]
"""The base sets teachers fit on: never tuxpaint or emoji, so their tasks stay transfer for distilled students."""


class TeacherEntry(Strict):
    """The base of every zoo entry class: each adds ``kind: Literal["its name"]`` and its own fields."""


class ScoredEntry(TeacherEntry):
    suite: str | None = None
    """Eval-suite YAML the fitted teacher is scored on; None: the default suite (as the students)."""


class FittedEntry(TeacherEntry):
    holdout: bool = False
    """Fit without the validation slice of the training data: what a ``data.holdout`` recipe's teachers
    are (``Zoo.for_holdout``). Left out of the dump while False, so other fits keep their keys."""

    omitted_at_default: ClassVar[dict[str, object]] = {"holdout": False}


def suite_datasets(suite: str | None) -> set[str]:
    """The datasets the tasks of an eval suite read."""
    return {task.dataset for task in load_suite(suite).tasks}


def suite_input(suite: str | None) -> dict[str, str]:
    """A key's ``inputs`` entry for the eval suite a teacher is scored on."""
    return {"suite": suite_key(suite)}


class TeacherKind:
    """One source of teachers. Subclasses set ``name`` (the zoo's ``kind:``) and ``spec`` (the entry class)
    and implement ``identity``, ``required_datasets``, ``load``, ``describe`` and ``embed_dim``; the rest
    has defaults that suit a pretrained teacher loaded as it is."""

    name: ClassVar[str]
    spec: ClassVar[type[TeacherEntry]]

    # --------------------------------------------------------------------------------- identity
    def identity(self, name: str, spec: Any, ws: Workspace) -> tuple[Any, dict[str, str]]:
        """(config, inputs) the teacher's cache key hashes: what it is, and what it was fitted on."""
        raise NotImplementedError

    def key(self, name: str, spec: Any, ws: Workspace) -> str:
        """The teacher's stage-cache key."""
        return TEACHER.key(*self.identity(name, spec, ws))

    def required_datasets(self, name: str, spec: Any, ws: Workspace) -> set[str]:
        """Datasets its fit and its score read (built before the teacher stage runs)."""
        raise NotImplementedError

    def for_holdout(self, spec: Any) -> Any:
        """The entry as a ``data.holdout`` recipe uses it: fitted without the validation slice when the
        kind is fitted here (its entry has ``holdout``), else unchanged."""
        return spec.model_copy(update={"holdout": True}) if "holdout" in type(spec).model_fields else spec

    # ------------------------------------------------------------------------------ fit and load
    def fit(self, name: str, spec: Any, ws: Workspace, out: Path, reporter, progress: bool) -> tuple[dict, str | None]:
        """Fit into the artifact folder ``out``; returns (fit summary, eval suite the teacher is scored on).
        A pretrained kind fits nothing and is scored on its entry's ``suite``."""
        return {}, spec.suite

    def load(self, name: str, spec: Any, artifact: Path):
        """The teacher as an ImageTextEncoder (with ``model.logit_scale``), from its artifact folder."""
        raise NotImplementedError

    # -------------------------------------------------------------------------------- describing
    def describe(self, spec: Any) -> str:
        """One line on where the teacher comes from (``workbench teacher list``)."""
        raise NotImplementedError

    def embed_dim(self, name: str, spec: Any) -> int:
        """Its embedding width, from the entry alone (before any fit)."""
        raise NotImplementedError

    def lineage(self, name: str, spec: Any, by: str, of_recipe: Callable[[Recipe, str], Lineage]) -> Lineage:
        """What it learned from, as ``evaluate.lineage`` counts seen data; ``by`` names it there.
        ``of_recipe`` is a recipe's own lineage (``workbench.study.lineage.recipe_lineage``), for a kind
        trained from a recipe."""
        return Lineage([], [f"{by}: {self.describe(spec)} (its data is not known here)"])

    # ------------------------------------------------------------------------ plan estimates
    def fit_estimate(self, name: str, spec: Any, ws: Workspace) -> tuple[float | None, str]:
        """(estimated seconds of its teacher stage or None when there is no figure, what the stage does)."""
        return None, f"{self.describe(spec)}: loaded and scored"

    def resumable(self, name: str, spec: Any, ws: Workspace, cache: StageCache) -> tuple[Path, int] | None:
        """(partial folder a killed fit resumes from, its total steps), for a kind whose fit checkpoints."""
        return None

    def views_per_s(self, name: str, spec: Any) -> float | None:
        """Images a second one forward pass embeds (a reinforcement's cost); None: no recorded figure."""
        return None


_KINDS: dict[str, TeacherKind] = {}
_discovered = False


def register_kind(cls: type[TeacherKind]) -> type[TeacherKind]:
    """Class decorator: register ``cls`` under ``cls.name``, the ``kind:`` its zoo entries carry."""
    check_new_kind("teacher", _KINDS, cls)
    _KINDS[cls.name] = cls()
    return cls


def _discover() -> None:
    """Import every kind module of this package once (each registers its kind)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def kinds() -> dict[str, TeacherKind]:
    """Every registered kind, by name."""
    _discover()
    return dict(_KINDS)


def kind_named(name: str) -> TeacherKind:
    _discover()
    if name not in _KINDS:
        raise KindError(f"unknown teacher kind {name!r}; known: {', '.join(_KINDS)}")
    return _KINDS[name]


def kind_of(spec: BaseModel) -> TeacherKind:
    """The kind of a zoo entry."""
    return kind_named(spec.kind)


def entry_classes() -> tuple[type[TeacherEntry], ...]:
    """The entry classes of every registered kind (what a zoo entry validates as)."""
    return tuple(kind.spec for kind in kinds().values())
