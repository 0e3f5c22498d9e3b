"""The typed schema of an eval suite file, and loading it (the default suite ships as ``suite.yaml``).

A suite is data: tasks (each task's name becomes its metric prefix) and headline columns that average
one metric over listed tasks — the workbench's stand-ins for the paper's IN-val, Flickr30k and Avg. 38.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_serializer, model_validator

from workbench.config.files import Strict, load_spec, suite_path

from workbench.stages.cache import stage_key

TRANSFER = "transfer"
"""The metric: mean primary metric of the tasks the student has truly never seen."""

ZEROSHOT_METRICS = ("balanced_acc", "top1")
RETRIEVAL_METRICS = ("r1", "r5", "r10", "i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10")
RECALL_KS = (1, 5, 10)
NEAR_CHANCE_Z = 3.0
"""A value fewer standard errors than this above chance is flagged as not beating chance (eval, reports)."""


LabelFilter = dict[str, list[str]]
"""Class field → labels, e.g. ``{category: [animals, food]}``."""


class DataRef(Strict):
    """A dataset, or the part of it whose class labels pass a filter. Captioner fine-tune sets and eval
    tasks name data this way, so a lineage can tell whether a task's classes were ever trained on: a
    fine-tune on some tuxpaint categories leaves retrieval on the other categories unseen."""

    dataset: str
    where: LabelFilter = {}
    """Keep only samples whose label in each named field is one of these (no label: dropped)."""
    exclude: LabelFilter = {}
    """Drop samples whose label in a named field is one of these."""

    @property
    def filtered(self) -> bool:
        return bool(self.where or self.exclude)

    def keeps(self, labels: dict[str, str | None]) -> bool:
        """Whether a sample with these class labels is in the reference."""
        return (all(labels.get(field) in allowed for field, allowed in self.where.items())
                and not any(labels.get(field) in dropped for field, dropped in self.exclude.items()))

    def rows(self, classes: dict[str, list[str | None]], count: int, where: str) -> list[int]:
        """Indices of the kept samples of a split with ``classes`` (field → label per sample); an unknown
        field or an empty result is an error naming ``where``."""
        if not self.filtered:
            return list(range(count))
        if unknown := sorted(f for f in {*self.where, *self.exclude} if f not in classes):
            raise ValueError(f"{where}: dataset {self.dataset!r} has no class field {unknown} "
                             f"(it has {sorted(classes)})")
        kept = [i for i in range(count) if self.keeps({field: labels[i] for field, labels in classes.items()})]
        if not kept:
            raise ValueError(f"{where}: no sample of {self.dataset!r} passes where={self.where} "
                             f"exclude={self.exclude}")
        return kept

    def describe(self) -> str:
        parts = [f"{field} in {'/'.join(labels)}" for field, labels in self.where.items()]
        parts += [f"{field} not in {'/'.join(labels)}" for field, labels in self.exclude.items()]
        return self.dataset + (f" ({'; '.join(parts)})" if parts else "")


def as_ref(item: "str | DataRef") -> DataRef:
    """A plain dataset name as a reference to all of it."""
    return item if isinstance(item, DataRef) else DataRef(dataset=item)


class _Task(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    """Metric prefix: ``{name}/{metric}``."""
    dataset: str
    """A dataset built by ``workbench data build NAME``."""
    split: str = "eval"
    where: LabelFilter = {}
    """Score only samples whose label in each named class field is one of these (see ``DataRef``)."""
    exclude: LabelFilter = {}
    """Leave out samples whose label in a named class field is one of these."""
    domain: Literal["in-domain", "transfer"]
    """What the suite expects: in-domain (held-out images of a base set) or transfer. Whether a task is
    truly unseen by a given student depends on its whole lineage (student, teachers, captioners):
    ``workbench.evaluate.lineage`` decides that per trial."""

    @model_serializer(mode="wrap")
    def _omit_empty_filters(self, handler):
        """Unfiltered tasks dump as before the filters existed: suites hashed into stage keys keep them."""
        data = handler(self)
        for key in ("where", "exclude"):
            if not getattr(self, key):
                data.pop(key, None)
        return data

    @property
    def ref(self) -> DataRef:
        return DataRef(dataset=self.dataset, where=self.where, exclude=self.exclude)


class ZeroShotTask(_Task):
    kind: Literal["zeroshot"]
    field: str
    """The class field of the samples' ``classes`` dict."""
    templates: list[str] = Field(min_length=1)
    """Prompts with one ``{}`` for the class name; class embedding = mean of the normalised prompts."""
    classnames: dict[str, str] = {}
    """Label → text for labels that read badly as words (default: the label, underscores as spaces)."""
    dedupe_captions: bool = False
    """Keep one (seeded) image per caption. For glyphs, whose three font renders of a character are
    not independent draws: the standard error assumes independent items."""
    min_per_class: int = Field(default=1, ge=1)
    """Drop rarer classes: balanced accuracy weighs each class equally, so a class with 2 images adds
    a recall of 0, 0.5 or 1 — noise that swamps the differences studies look for."""
    max_classes: int | None = Field(default=None, ge=2)
    """Keep only the most frequent classes (ties by name)."""
    max_per_class: int | None = Field(default=None, ge=1)
    """Seeded subsample per class: bounds eval time on large sets (fashion-mnist has 70k images)."""
    primary: Literal["balanced_acc", "top1"] = "balanced_acc"
    """The metric ``avg`` uses; balanced because these sets are imbalanced."""

    @field_validator("templates")
    @classmethod
    def _one_slot(cls, templates: list[str]) -> list[str]:
        bad = [t for t in templates if t.count("{}") != 1]
        if bad:
            raise ValueError(f"each template needs exactly one '{{}}' for the class name: {bad}")
        return templates


class RetrievalTask(_Task):
    kind: Literal["retrieval"]
    dedupe_captions: bool = True
    """Keep one (seeded) image per caption: glyphs render one caption in several fonts, and duplicate
    captions would make the 'right' text ambiguous."""
    max_items: int | None = Field(default=None, ge=2)
    """Seeded subsample after dedupe; None keeps the whole split."""
    primary: Literal["r1", "r5", "r10"] = "r5"
    """The metric ``avg`` uses. R@5, not R@1: at a fixed multiple m of chance the signal-to-noise of R@k
    is about sqrt(k (m-1)^2 / m), independent of N, so R@1 of a micro student is mostly noise."""


Task = Annotated[Union[ZeroShotTask, RetrievalTask], Field(discriminator="kind")]


class HeadlineColumn(Strict):
    tasks: list[str] | Literal["all"] = Field(min_length=1)
    metric: str | None = None
    """The task metric averaged; None uses each task's ``primary``."""


class Suite(Strict):
    tasks: list[Task] = Field(min_length=1)
    headline: dict[str, HeadlineColumn] = {}
    seed: int = 0
    """Seed of every subsample (dedupe choice, max_items, max_per_class): fixed so runs compare."""

    @model_validator(mode="after")
    def _check_names(self) -> "Suite":
        names = [t.name for t in self.tasks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate task names: {duplicates}")
        for column, spec in self.headline.items():
            if "/" in column or column in names:
                raise ValueError(f"headline column {column!r} must not contain '/' or reuse a task name")
            for task in self.column_tasks(column):
                allowed = ZEROSHOT_METRICS if task.kind == "zeroshot" else RETRIEVAL_METRICS
                if spec.metric is not None and spec.metric not in allowed:
                    raise ValueError(f"headline {column!r}: task {task.name!r} has no metric "
                                     f"{spec.metric!r} (it has {list(allowed)})")
        return self

    def task(self, name: str) -> ZeroShotTask | RetrievalTask:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"no task {name!r} in the suite (tasks: {[t.name for t in self.tasks]})")

    def column_tasks(self, column: str) -> list[ZeroShotTask | RetrievalTask]:
        spec = self.headline[column]
        if spec.tasks == "all":
            return list(self.tasks)
        try:
            return [self.task(name) for name in spec.tasks]
        except KeyError as err:
            raise ValueError(f"headline {column!r}: {err.args[0]}") from None


def load_suite(path: str | Path | None = None) -> Suite:
    """Load and validate a suite file; no path gives the default suite, a bare name a shipped suite.
    A missing file is a FileNotFoundError; a malformed one a ConfigError naming the key."""
    return load_spec(suite_path(path), Suite)


def suite_identity(path: str | Path | None = None) -> dict:
    """What a suite's results depend on: its tasks and headline, not where its file lies."""
    return load_suite(path).model_dump(mode="json")


def suite_key(path: str | Path | None = None) -> str:
    """The suite's content key, an input of every stage whose artifact holds its scores."""
    return stage_key("suite", 1, suite_identity(path))
