"""Study files: a base recipe, fixed overrides, axes, seeds, an optional Optuna search, a table.

A study file is data, read by ``workbench.config.files.load_spec``; nothing in it is executed or imported.
Every problem is reported as ``FILE: dotted.key: what is wrong (what is allowed)``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator, model_validator

from workbench.config.errors import ConfigError
from workbench.config.files import Strict, load_spec
from workbench.config.overrides import check_key
from workbench.config.resolve import Profile, recipe_path

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
DEFAULT_MAX_TRIALS = 1000
"""Trials a study may define (grid points × seeds, or search trials) unless it raises ``max_trials``: more
is nearly always a typo (``seeds: 100000000``), and expanding such a grid would hang every command."""
ROW_SEPARATOR = " / "
"""Joins the labels of several row axes into one row label (``table.reference``)."""


class PaperRef(Strict):
    name: str
    table: int | str | None = None


class Axis(Strict):
    """One ablation axis: one dotted key and its values, or ``zip`` of several keys varied together."""

    key: str | None = None
    values: list[Any] | None = None
    zip: dict[str, list[Any]] | None = None
    labels: list[str] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "Axis":
        if self.zip is None:
            if self.key is None or self.values is None:
                raise ValueError("an axis needs `key` and `values`, or `zip: {dotted.key: [values], ...}`")
            if not self.values:
                raise ValueError("`values` is empty: an axis needs at least one value")
        else:
            if self.key is not None or self.values is not None:
                raise ValueError("use either `key`/`values` or `zip`, not both")
            lengths = {len(v) for v in self.zip.values()}
            if not self.zip or 0 in lengths:
                raise ValueError("`zip` needs at least one key with at least one value")
            if len(lengths) != 1:
                raise ValueError(f"`zip` lists must have equal lengths (got {sorted(lengths)})")
        if self.labels is not None and len(self.labels) != self.size:
            raise ValueError(f"`labels` has {len(self.labels)} entries for {self.size} values")
        if len(set(self.display_labels)) != self.size:
            raise ValueError(f"duplicate values or labels: {self.display_labels}")
        return self

    @property
    def keys(self) -> list[str]:
        return [self.key] if self.zip is None else list(self.zip)

    @property
    def size(self) -> int:
        return len(self.values) if self.zip is None else len(next(iter(self.zip.values())))

    def overrides(self, index: int) -> dict[str, Any]:
        if self.zip is None:
            return {self.key: self.values[index]}
        return {key: values[index] for key, values in self.zip.items()}

    @property
    def display_labels(self) -> list[str]:
        if self.labels is not None:
            return self.labels
        return [_label(self.overrides(i)) for i in range(self.size)]


def _label(overrides: dict[str, Any]) -> str:
    parts = []
    for value in overrides.values():
        parts.append("+".join(map(str, value)) if isinstance(value, list) else str(value))
    return ",".join(parts)


def _check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"low {low} is above high {high}; write [low, high]")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0 (got {low})")


class FloatRange(Strict):
    float: tuple[float, float]
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "FloatRange":
        _check_range(*self.float, self.log)
        return self


class IntRange(Strict):
    int: tuple[int, int]
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "IntRange":
        _check_range(*self.int, self.log)
        return self


class Choice(Strict):
    choice: list[Any] = Field(min_length=1)


def _space_kind(value: Any) -> str | None:
    """Which form a search dimension has, by its one distinguishing key (so errors come from that form)."""
    if isinstance(value, BaseModel):
        return {FloatRange: "float", IntRange: "int", Choice: "choice", Each: "each"}.get(type(value))
    return next((kind for kind in ("float", "int", "choice", "each") if isinstance(value, dict) and kind in value),
                None)


_EXPECTED = "expected {float: [low, high]}, {int: [low, high]}, {choice: [values]} or {each: [dimensions]}"
Scalar = Annotated[Union[Annotated[FloatRange, Tag("float")], Annotated[IntRange, Tag("int")],
                         Annotated[Choice, Tag("choice")]],
                   Discriminator(_space_kind, custom_error_type="search_dimension", custom_error_message=_EXPECTED)]


class Each(Strict):
    """A list-valued key searched element by element (``distill.logit_scales``: one scale per teacher,
    searched jointly); Optuna sees ``KEY.0``, ``KEY.1``, …"""

    each: list[Scalar] = Field(min_length=1)

    def corner(self) -> list[Any]:
        """The lowest value of every element: a point the recipe must accept."""
        return [lowest(dim) for dim in self.each]


def lowest(dim: Any) -> Any:
    """The lowest value a dimension can suggest (its first choice)."""
    if isinstance(dim, Each):
        return dim.corner()
    return dim.float[0] if isinstance(dim, FloatRange) else dim.int[0] if isinstance(dim, IntRange) else dim.choice[0]


Dimension = Annotated[Union[Annotated[FloatRange, Tag("float")], Annotated[IntRange, Tag("int")],
                            Annotated[Choice, Tag("choice")], Annotated[Each, Tag("each")]],
                      Discriminator(_space_kind, custom_error_type="search_dimension", custom_error_message=_EXPECTED)]


class Search(Strict):
    sampler: Literal["tpe", "random", "cmaes", "qmc"] = "tpe"
    trials: int = Field(gt=0)
    space: dict[str, Dimension] = Field(min_length=1)
    pruner: Literal["median", "none"] = "median"


class Objective(Strict):
    metric: str = "avg"
    direction: Literal["maximize", "minimize"] = "maximize"


class Table(Strict):
    rows: list[str] = Field(default_factory=list)
    """Axis names that index the rows (empty: one row)."""
    columns: str | None = None
    """An axis name whose values become columns (then the first of ``metrics`` fills the cells; every
    metric listed still gets its verdicts and its lines in the CSV)."""
    metrics: list[str] = Field(default_factory=lambda: ["zeroshot", "retrieval", "avg"])
    best: Literal["column", "row"] = "column"
    """Which cells compete for bold: the rows of each column (the papers' usual table) or, with a
    ``columns`` axis, the columns of each row (MobileCLIP2 Tab. 3: each teacher's best logit scale)."""
    reference: str | None = None
    """The control row's label, as the table prints it; with several row axes, their labels joined by
    ``ROW_SEPARATOR`` in ``rows`` order ("clipart-web / plain"). Every other row gets a verdict against it."""

    @field_validator("rows", mode="before")
    @classmethod
    def _one_row_axis(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    efficiency: str | None = None
    """The columns axis that is a training budget (e.g. ``train.steps_scale``): the report then says how many
    times fewer samples each row needs to reach the reference row's score at its largest budget."""

    @model_validator(mode="after")
    def _best_row_needs_columns(self) -> "Table":
        if self.best == "row" and not self.columns:
            raise ValueError("best: row compares the columns of each row; this table has no `columns` axis")
        if self.efficiency is not None and (self.efficiency != self.columns or self.reference is None):
            raise ValueError("efficiency names the `columns` axis that is the budget, and needs a `reference` "
                             f"row to measure against (columns: {self.columns}, reference: {self.reference})")
        return self

    contrasts: list[tuple[str, str]] = Field(default_factory=list)
    """Pairs of row labels ``[row, against]`` a reader compares besides the reference (a teacher pair
    against one of its teachers alone): each gets a difference, a 95% interval and a verdict, as every row
    gets against the reference."""

    def reference_labels(self, axes: dict[str, Axis]) -> tuple[str, ...]:
        """The reference's label on each row axis; ValueError saying how rows are labelled if none matches."""
        if not self.rows:
            raise ValueError("a reference row needs `table.rows`; this table has one row")
        return self.row_labels(self.reference or "", axes)

    def row_labels(self, text: str, axes: dict[str, Axis]) -> tuple[str, ...]:
        """A row label as printed, split into its label on each row axis; ValueError saying how rows are
        labelled if none matches."""
        def split(text: str, names: list[str]) -> tuple[str, ...] | None:
            if len(names) == 1:
                return (text,) if text in axes[names[0]].display_labels else None
            for label in axes[names[0]].display_labels:
                if text.startswith(label + ROW_SEPARATOR):
                    rest = split(text[len(label) + len(ROW_SEPARATOR):], names[1:])
                    if rest is not None:
                        return (label, *rest)
            return None

        if not self.rows:
            raise ValueError("row labels need `table.rows`; this table has one row")
        found = split(text, self.rows)
        if found is None:
            labels = {name: axes[name].display_labels for name in self.rows}
            choices = "; ".join(f"{name}: {', '.join(v[:8])}{', …' if len(v) > 8 else ''}"
                                for name, v in labels.items())
            how = "" if len(self.rows) == 1 else (
                f"; write one label of each row axis joined by {ROW_SEPARATOR!r} in `rows` order, e.g. "
                f"{ROW_SEPARATOR.join(v[0] for v in labels.values())!r}")
            raise ValueError(f"{text!r} is not a row label ({choices}){how}")
        return found


class Study(Strict):
    study: str = Field(pattern=NAME_PATTERN)
    title: str = ""
    description: str = ""
    paper: PaperRef | None = None
    recipe: str = "clip"
    profile: Profile = "micro"
    set: dict[str, Any] = Field(default_factory=dict)
    axes: dict[str, Axis] = Field(default_factory=dict)
    seeds: int | list[int] = 1
    search: Search | None = None
    objective: Objective = Objective()
    table: Table = Table()
    max_trials: int = Field(default=DEFAULT_MAX_TRIALS, gt=0)
    """Refuse a study with more trials than this before expanding it; raise it for a grid that big on purpose."""

    @field_validator("axes")
    @classmethod
    def _axis_names(cls, axes: dict[str, Axis]) -> dict[str, Axis]:
        for name in axes:
            if not re.match(NAME_PATTERN, name) or name == "seed":
                raise ValueError(f"axis name {name!r} must match {NAME_PATTERN} and not be 'seed'")
        return axes

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: int | list[int]) -> int | list[int]:
        if isinstance(seeds, int) and seeds < 1:
            raise ValueError("`seeds` must be >= 1 (a count) or a non-empty list of seeds")
        if isinstance(seeds, list) and (not seeds or len(set(seeds)) != len(seeds)):
            raise ValueError("`seeds` list must be non-empty with no repeats")
        return seeds

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def seed_count(self) -> int:
        return self.seeds if isinstance(self.seeds, int) else len(self.seeds)

    @property
    def grid_size(self) -> int:
        """Grid points (the product of the axes' sizes) times seeds, without expanding anything."""
        return math.prod(axis.size for axis in self.axes.values()) * self.seed_count

    def experiment(self, profile: str) -> str:
        """Optuna study and MLflow experiment name: a smoke run never mixes with the real one."""
        return f"{self.study}/{profile}"


def _check_references(study: Study, where: str) -> None:
    """Keys the schema cannot see: the recipe name, dotted recipe keys, table names that must be axes."""
    try:
        recipe_path(study.recipe)
    except ConfigError as error:
        raise ConfigError(where, f"recipe: {error.message}") from None
    def check(dotted: str, at: str) -> None:
        try:
            check_key(dotted)
        except KeyError as error:
            raise ConfigError(where, f"{at}: {error.args[0]}") from None

    for dotted in study.set:
        check(dotted, f"set.{dotted}")
    seen: dict[str, str] = {}
    for name, axis in study.axes.items():
        for dotted in axis.keys:
            at = f"axes.{name}.{'key' if axis.zip is None else 'zip.' + dotted}"
            check(dotted, at)
            if dotted in seen:
                raise ConfigError(where, f"{at}: {dotted!r} is already varied by axis {seen[dotted]!r}")
            if dotted in study.set:
                raise ConfigError(where, f"{at}: {dotted!r} is also fixed in `set`; remove one of them")
            seen[dotted] = name
    if study.search:
        for dotted in study.search.space:
            check(dotted, f"search.space.{dotted}")
            if dotted in seen:
                raise ConfigError(where, f"search.space.{dotted}: also varied by axis {seen[dotted]!r}")
    for row in study.table.rows:
        if row not in study.axes:
            raise ConfigError(where, f"table.rows: {row!r} is not an axis (axes: {sorted(study.axes) or 'none'})")
    if study.table.columns is not None and study.table.columns not in study.axes:
        raise ConfigError(where, f"table.columns: {study.table.columns!r} is not an axis "
                                 f"(axes: {sorted(study.axes) or 'none'})")
    if study.table.reference is not None:
        if study.search:
            raise ConfigError(where, "table.reference: a search study's rows mix trials of different values, "
                                     "so seeds cannot be told from them; compare a grid study's rows instead")
        try:
            study.table.reference_labels(study.axes)
        except ValueError as error:
            raise ConfigError(where, f"table.reference: {error}") from None
    for i, pair in enumerate(study.table.contrasts):
        if study.search:
            raise ConfigError(where, "table.contrasts: a search study's rows mix trials of different values")
        if pair[0] == pair[1]:
            raise ConfigError(where, f"table.contrasts[{i}]: {pair[0]!r} against itself")
        for label in pair:
            try:
                study.table.row_labels(label, study.axes)
            except ValueError as error:
                raise ConfigError(where, f"table.contrasts[{i}]: {error}") from None


def check_size(study: Study, where: str) -> None:
    """Refuse more trials than ``max_trials`` from the counts alone, before anything is expanded."""
    cap, points, seeds = study.max_trials, study.grid_size // study.seed_count, study.seed_count
    raise_it = "set `max_trials: N` in the study file to allow more"
    if study.grid_size > cap:
        key = "seeds" if seeds > cap else "axes"
        raise ConfigError(where, f"{key}: {study.grid_size:,} trials ({points:,} grid point{'s' * (points != 1)} × "
                                 f"{seeds:,} seed{'s' * (seeds != 1)}) "
                                 f"exceed the cap of {cap:,} (max_trials); {raise_it}")
    if study.search and study.search.trials > cap:
        raise ConfigError(where, f"search.trials: {study.search.trials:,} trials exceed the cap of {cap:,} "
                                 f"(max_trials); {raise_it}")


def load_study(path: str | Path) -> Study:
    """Load and validate a study file's schema, or raise ConfigError naming file and key.

    Nothing is expanded: the trial count is checked from the axes' sizes and every dotted key against
    the recipe schema. Whether the names it uses exist (datasets, teachers, suites) is the study's check:
    ``workbench.study.references.load_checked``.
    """
    where = str(path)
    study = load_spec(path, Study, mapping="a study file is a mapping, got {type}")
    check_size(study, where)
    _check_references(study, where)
    return study
