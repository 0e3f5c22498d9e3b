"""Which eval tasks a trained student has truly never seen, from its recipe's whole lineage.

A task is transfer for a student only if nothing upstream of it trained on the task's data: not the
student's own training sets, not its teachers' fits (a LiT teacher's data; a scratch teacher's recipe,
with its own lineage), not its captioners' pretraining or fine-tuning (the whole parent chain). Data is
compared as the suite and the registry name it: a dataset, or the classes a filter keeps (``DataRef``).
Two references to one dataset are disjoint only when some class field's filters leave no label in
common; whatever cannot be told apart counts as seen. Splits do not matter: a student that trained on
a set's train split has seen that set, and its held-out images are in-domain, not transfer.

The suite's static ``domain:`` says what a task is meant to be; this says what it is for one student.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.evaluate.spec import DataRef, Suite

if TYPE_CHECKING:
    from workbench.config.recipe import Recipe

TRANSFER = "transfer"
"""The metric: mean primary metric of the tasks the student has truly never seen."""


@dataclass(frozen=True)
class Trained:
    ref: DataRef
    by: str
    """Who trained on it: ``student``, ``teacher NAME``, ``captioner NAME`` (``, its parent P``)."""


@dataclass
class Lineage:
    trained: list[Trained] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    """Pretrained parts whose data lies outside the workspace (ImageNet towers, open_clip weights)."""

    def __iadd__(self, other: "Lineage") -> "Lineage":
        self.trained += [t for t in other.trained if t not in self.trained]
        self.external += [e for e in other.external if e not in self.external]
        return self

    def seen_by(self, ref: DataRef) -> list[str]:
        """Who in the lineage trained on data that ``ref`` may share samples or classes with."""
        return list(dict.fromkeys(t.by for t in self.trained if overlaps(t.ref, ref)))

    def tasks(self, suite: Suite) -> dict[str, dict]:
        """Per task: its data, the suite's declared domain, whether it is unseen, and by whom it was seen."""
        out = {}
        for task in suite.tasks:
            seen = self.seen_by(task.ref)
            out[task.name] = {"data": task.ref.describe(), "declared": task.domain, "unseen": not seen,
                              "seen_by": seen}
        return out

    def unseen(self, suite: Suite) -> list[str]:
        return [name for name, row in self.tasks(suite).items() if row["unseen"]]

    def to_dict(self, suite: Suite) -> dict:
        return {"trained_on": [{"data": t.ref.describe(), "by": t.by, **t.ref.model_dump(mode="json")}
                               for t in self.trained],
                "external": list(self.external), "tasks": self.tasks(suite)}


def overlaps(a: DataRef, b: DataRef) -> bool:
    """Whether two references may share a sample's dataset and classes (False only when provably not)."""
    if a.dataset != b.dataset:
        return False
    fields = {*a.where, *a.exclude, *b.where, *b.exclude}
    return not any(_disjoint(_allowed(a, f), _allowed(b, f)) for f in fields)


def _allowed(ref: DataRef, field: str) -> tuple[frozenset[str], bool]:
    """The labels of ``field`` the reference keeps: (labels, False), or every label but these: (labels, True)."""
    excluded = frozenset(ref.exclude.get(field, ()))
    if field in ref.where:
        return frozenset(ref.where[field]) - excluded, False
    return excluded, True


def _disjoint(a: tuple[frozenset[str], bool], b: tuple[frozenset[str], bool]) -> bool:
    (labels_a, all_but_a), (labels_b, all_but_b) = a, b
    if not all_but_a and not all_but_b:
        return not labels_a & labels_b
    if not all_but_a:
        return labels_a <= labels_b
    if not all_but_b:
        return labels_b <= labels_a
    return False  # two "every label but ..." sets always share the labels neither names


def recipe_lineage(recipe: Recipe, by: str = "student") -> Lineage:
    """Everything the student of ``recipe`` learned from: its training sets, its distilled teachers' fits
    and the captioners whose synthetic captions it trains on (with their parents)."""
    lineage = Lineage([Trained(DataRef(dataset=name), by) for name in recipe.data.train])
    if recipe.model.pretrained:
        lineage.external.append(f"{by}: open_clip {recipe.model.name} weights {recipe.model.pretrained!r}")
    if not recipe.reinforce.teachers:
        return lineage
    from workbench.teachers.zoo import load_zoo, teacher_spec

    zoo = load_zoo(recipe.reinforce.zoo)
    for name in recipe.distilled_teachers:
        lineage += teacher_lineage(name, teacher_spec(name, zoo))
    if recipe.reinforce.captioners:
        from workbench.captioners.spec import load_registry

        registry = load_registry(recipe.reinforce.registry)
        for name in used_captioners(recipe):
            lineage += captioner_lineage(name, registry)
    return lineage


def used_captioners(recipe: Recipe) -> list[str]:
    """The stored captioners whose captions reach the student (as the reinforced trainer picks them)."""
    distill = recipe.distill
    if distill.synthetic_captions == 0 or not (distill.synthetic_weight > 0 or distill.mix_synthetic > 0):
        return []
    return list(distill.captioners or recipe.reinforce.captioners)


def teacher_lineage(name: str, spec) -> Lineage:
    from workbench.teachers.kinds import kind_of

    return kind_of(spec).lineage(name, spec, f"teacher {name}")


def captioner_lineage(name: str, registry) -> Lineage:
    from workbench.captioners.spec import captioner_spec, lineage

    trained = []
    for ancestor in lineage(name, registry):
        by = f"captioner {name}" + ("" if ancestor == name else f", its parent {ancestor}")
        trained += [Trained(ref, by) for ref in captioner_spec(ancestor, registry).refs]
    return Lineage(trained)


def transfer_scores(result: dict, suite: Suite, lineage: Lineage) -> tuple[dict, dict, dict]:
    """``transfer`` (mean primary metric of the unseen tasks that ran), its chance and standard error,
    from an eval result (``SuiteResult.to_dict()``); empty when no task is unseen."""
    ran = {task["name"] for task in result["tasks"]}
    keys = [f"{t.name}/{t.primary}" for t in suite.tasks if t.name in ran and t.name in lineage.unseen(suite)]
    if not keys:
        return {}, {}, {}
    metrics, chance, stderr = result["metrics"], result["chance"], result["stderr"]
    return ({TRANSFER: sum(metrics[k] for k in keys) / len(keys)},
            {TRANSFER: sum(chance[k] for k in keys) / len(keys)},
            {TRANSFER: math.sqrt(sum(stderr[k] ** 2 for k in keys)) / len(keys)})


def render(lineage: Lineage | None, suite: Suite, result: dict) -> str:
    """Lines under an eval table: what the lineage trained on, each task's status, the ``transfer`` score."""
    if lineage is None:
        return ("lineage unknown (no recipe.json beside the checkpoint): the domain column is the suite's "
                "expectation, not a check of what this model trained on")
    lines = ["lineage (what the student, its teachers and its captioners trained on):"]
    lines += [f"  {t.by}: {t.ref.describe()}" for t in lineage.trained]
    lines += [f"  external: {e}" for e in lineage.external]
    lines.append("tasks (declared domain -> for this student):")
    for name, row in lineage.tasks(suite).items():
        state = "unseen" if row["unseen"] else "seen by " + ", ".join(row["seen_by"])
        lines.append(f"  {name:<22} {row['declared']:<9} -> {state}")
    metrics, chance, stderr = transfer_scores(result, suite, lineage)
    unseen = [name for name in lineage.unseen(suite) if name in {t["name"] for t in result["tasks"]}]
    if metrics:
        lines.append(f"{TRANSFER} = {metrics[TRANSFER]:.4f} (chance {chance[TRANSFER]:.4f}, "
                     f"±se {stderr[TRANSFER]:.4f}): mean primary metric of the {len(unseen)} unseen tasks "
                     f"({', '.join(unseen)})")
    else:
        lines.append(f"{TRANSFER}: no task is unseen by this student")
    return "\n".join(lines)


def checkpoint_lineage(checkpoint: Path) -> Lineage | None:
    """The lineage of a student the workbench trained (its ``recipe.json`` lies beside ``model.pt``);
    None for any other checkpoint."""
    from pydantic import ValidationError

    from workbench.config.recipe import Recipe

    path = Path(checkpoint).with_name("recipe.json")
    try:
        return recipe_lineage(Recipe.model_validate_json(path.read_text()))
    except (OSError, ValidationError):
        return None


def lineage_tags(record: dict) -> dict[str, str]:
    """Tracking tags of a lineage record (``Lineage.to_dict``): per task, unseen or who saw it."""
    from workbench.tracking.mlflow_store import TAG_PREFIX

    tasks = record.get("tasks", {})
    tags = {f"{TAG_PREFIX}lineage.{name}": "unseen" if row["unseen"] else "seen by " + ", ".join(row["seen_by"])
            for name, row in tasks.items()}
    tags[f"{TAG_PREFIX}lineage.unseen"] = ",".join(name for name, row in tasks.items() if row["unseen"])
    return tags


def log_lineage(tracker, run_id: str, record: dict) -> None:
    """A trial's lineage record as ``eval/lineage.json`` and per-task tags of its MLflow run."""
    tracker.log_text(run_id, json.dumps(record, indent=2), "eval/lineage.json")
    tracker.set_tags(run_id, lineage_tags(record))
