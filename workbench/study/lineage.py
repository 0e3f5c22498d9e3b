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
from pathlib import Path

from pydantic import ValidationError

from workbench.captioners.kinds import kind_of as captioner_kind
from workbench.captioners.spec import captioner_spec, lineage, load_registry
from workbench.config.recipe import Recipe
from workbench.evaluate.lineage import Lineage, Trained
from workbench.evaluate.spec import DataRef
from workbench.teachers.kinds import kind_of
from workbench.teachers.zoo import load_zoo, teacher_spec
from workbench.tracking.mlflow_store import TAG_PREFIX


def recipe_lineage(recipe: Recipe, by: str = "student") -> Lineage:
    """Everything the student of ``recipe`` learned from: its training sets, its distilled teachers' fits
    and the captioners whose synthetic captions it trains on (with their parents)."""
    if recipe.data.reinforced is not None:  # images, captions and teachers all from outside the workspace
        released = recipe.data.reinforced
        teachers = ", ".join(t.name for t in released.teachers)
        lineage = Lineage(external=[f"{by}: released {released.format} shards {released.shards} (teachers "
                                    f"{teachers}, their synthetic captions)"])
    else:
        lineage = Lineage([Trained(DataRef(dataset=name), by) for name in recipe.data.train])
    if recipe.model.pretrained:
        lineage.external.append(f"{by}: open_clip {recipe.model.name} weights {recipe.model.pretrained!r}")
    if not recipe.reinforce.teachers:
        return lineage
    zoo = load_zoo(recipe.reinforce.zoo)
    for name in recipe.distilled_teachers:
        lineage += teacher_lineage(name, teacher_spec(name, zoo))
    if recipe.reinforce.captioners:
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
    return kind_of(spec).lineage(name, spec, f"teacher {name}", recipe_lineage)


def captioner_lineage(name: str, registry) -> Lineage:
    trained, external = [], []
    for ancestor in lineage(name, registry):
        by = f"captioner {name}" + ("" if ancestor == name else f", its parent {ancestor}")
        spec = captioner_spec(ancestor, registry)
        trained += [Trained(ref, by) for ref in captioner_kind(spec).trained_on(spec)]
        if (weights := captioner_kind(spec).external(spec)) is not None:
            external.append(f"{by}: {weights}")
    return Lineage(trained, external)


def checkpoint_lineage(checkpoint: Path) -> Lineage | None:
    """The lineage of a student the workbench trained (its ``recipe.json`` lies beside ``model.pt``);
    None for any other checkpoint."""

    path = Path(checkpoint).with_name("recipe.json")
    try:
        return recipe_lineage(Recipe.model_validate_json(path.read_text()))
    except (OSError, ValidationError):
        return None


def lineage_tags(record: dict) -> dict[str, str]:
    """Tracking tags of a lineage record (``Lineage.to_dict``): per task, unseen or who saw it."""
    tasks = record.get("tasks", {})
    tags = {f"{TAG_PREFIX}lineage.{name}": "unseen" if row["unseen"] else "seen by " + ", ".join(row["seen_by"])
            for name, row in tasks.items()}
    tags[f"{TAG_PREFIX}lineage.unseen"] = ",".join(name for name, row in tasks.items() if row["unseen"])
    return tags


def log_lineage(tracker, run_id: str, record: dict) -> None:
    """A trial's lineage record as ``eval/lineage.json`` and per-task tags of its MLflow run."""
    tracker.log_text(run_id, json.dumps(record, indent=2), "eval/lineage.json")
    tracker.set_tags(run_id, lineage_tags(record))
