"""Which datasets (and which of their splits and slices) a model learned from, and which eval tasks it never saw.

Pure bookkeeping over ``DataRef``s: who trained on what (``Lineage``), whether two references overlap, the
``transfer`` score over the tasks nobody in the lineage saw, and its rendering. Building a recipe's
lineage (which reads the zoo and the captioner registry) is the study's: ``workbench.study.lineage``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from workbench.evaluate.spec import TRANSFER, DataRef, Suite


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
