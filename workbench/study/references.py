"""Names a study file refers to, checked against what exists before any grid is expanded.

Datasets (built-in sources and the workspace's imported ones), zoo teachers, registry captioners, eval
suites (which must lie inside the project or the workspace) and the objective metric (which the trials'
suites must produce). Each value is checked where the file gives it — ``set``, an axis value, a search
choice — so the error names that place and the dotted key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from workbench.captioners.spec import load_registry
from workbench.config.errors import ConfigError
from workbench.config.files import DEFAULT_SUITE, suite_path
from workbench.config.resolve import recipe_values
from workbench.config.study import Choice, Study, load_study
from workbench.data.build import SOURCES
from workbench.evaluate.spec import RETRIEVAL_METRICS, ZEROSHOT_METRICS, Suite, load_suite
from workbench.teachers.zoo import INLINE_OPENCLIP, load_zoo, parse_inline
from workbench.workspace import Workspace


def study_values(study: Study, dotted: str) -> Iterator[tuple[str, Any]]:
    """``(where in the file, value)`` for every value the study gives ``dotted``."""
    if dotted in study.set:
        yield f"set.{dotted}", study.set[dotted]
    for name, axis in study.axes.items():
        if dotted in axis.keys:
            for index in range(axis.size):
                yield f"axes.{name} value #{index + 1}: {dotted}", axis.overrides(index)[dotted]
    if study.search and isinstance(dimension := study.search.space.get(dotted), Choice):
        for index, value in enumerate(dimension.choice):
            yield f"search.space.{dotted} choice #{index + 1}", value


def effective_values(study: Study, dotted: str) -> list[Any]:
    """Every value ``dotted`` can take in the study's trials: the file's, else the recipe's profiles'."""
    values = [value for _, value in study_values(study, dotted)]
    return values or recipe_values(study.recipe, dotted)


def _names(value: Any) -> list[str]:
    """The names in a list-of-names value (anything else is left to the recipe schema's own check)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _check_each(study: Study, where: str, dotted: str, check: Callable[[str], str | None]) -> None:
    for at, value in study_values(study, dotted):
        for name in _names(value):
            if (problem := check(name)) is not None:
                raise ConfigError(where, f"{at}: {problem}")


def known_datasets(ws: Workspace) -> list[str]:
    """Built-in sources, then datasets imported into (or built in) the workspace; reads, never creates."""
    found = sorted(p.parent.name for p in ws.data_dir.glob("*/manifest.json")) if ws.data_dir.is_dir() else []
    return list(SOURCES) + [name for name in found if name not in SOURCES]


def _datasets(study: Study, where: str, ws: Workspace) -> None:
    known = known_datasets(ws)
    _check_each(study, where, "data.train", lambda name: None if name in known else (
        f"unknown dataset {name!r}; known: {', '.join(known)} (import your own with `workbench data import`)"))


def _released(study: Study, where: str) -> None:
    """Released shards (``data.reinforced``) must exist: every pattern matches a file."""
    from workbench.config.recipe import ReleasedData
    from workbench.data.reinforced.released import released_shards  # no torch: validate stays light

    for at, value in study_values(study, "data.reinforced"):
        if not isinstance(value, dict):
            continue  # None (our own reinforcement), or a type the recipe schema names
        try:
            released_shards(ReleasedData.model_validate(value))
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(where, f"{at}: {str(error).splitlines()[0]}") from None


def _loaded(where: str, at: str, load: Callable[[], Any]) -> Any:
    """Load a zoo, registry or suite a study names; its problems become the study's, at ``at``."""
    try:
        return load()
    except ConfigError as error:
        raise ConfigError(where, f"{at}: {error}") from None
    except (OSError, ValueError) as error:
        raise ConfigError(where, f"{at}: {str(error).splitlines()[0]}") from None


def _teachers(study: Study, where: str) -> None:
    if not any(_names(value) for _, value in study_values(study, "reinforce.teachers")):
        return
    zoos = {zoo: _loaded(where, "reinforce.zoo", lambda zoo=zoo: load_zoo(zoo))
            for zoo in effective_values(study, "reinforce.zoo")}
    known = sorted({name for zoo in zoos.values() for name in zoo.teachers})

    def check(name: str) -> str | None:
        if name.startswith(INLINE_OPENCLIP):
            try:
                parse_inline(name)
            except ConfigError as error:
                return f"teacher {name!r}: {error.message}"
            return None
        if name in known:
            return None
        zoo_files = ", ".join(str(zoo or "the built-in zoo") for zoo in zoos)
        return (f"unknown teacher {name!r}; {zoo_files} has: {', '.join(known)} "
                f"(or openclip:MODEL/TAG_OR_PATH)")

    _check_each(study, where, "reinforce.teachers", check)


def _captioners(study: Study, where: str) -> None:
    if not any(_names(value) for _, value in study_values(study, "reinforce.captioners")):
        return
    registries = {path: _loaded(where, "reinforce.registry", lambda path=path: load_registry(path))
                  for path in effective_values(study, "reinforce.registry")}
    known = sorted({name for registry in registries.values() for name in registry.captioners})
    files = ", ".join(str(path or "the built-in registry") for path in registries)
    _check_each(study, where, "reinforce.captioners", lambda name: None if name in known else (
        f"unknown captioner {name!r}; {files} has: {', '.join(known)}"))


def _inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in roots)


def _suite_location(value: Any, ws: Workspace | None) -> str | None:
    """Why the suite ``value`` cannot be used, or None: it must exist and, with a workspace to tell,
    lie inside the project (the working directory), the workspace or the shipped suites."""
    if value is not None and not isinstance(value, str):
        return None  # the recipe schema names the type
    try:
        path = suite_path(value)
    except FileNotFoundError as error:
        return str(error)
    roots = [Path.cwd(), DEFAULT_SUITE.parent] + ([ws.root] if ws is not None else [])
    if ws is not None and not _inside(path, roots):
        return (f"suite {str(value)!r} resolves to {path.resolve()}, outside the project ({Path.cwd()}) and the "
                f"workspace ({ws.root}); copy it into either")
    return None


def _suites(study: Study, where: str, ws: Workspace | None) -> None:
    for at, value in study_values(study, "eval.suite"):
        if (problem := _suite_location(value, ws)) is not None:
            raise ConfigError(where, f"{at}: {problem}")


def suite_metrics(suite: Suite) -> tuple[list[str], list[str]]:
    """The headline columns and the ``task/metric`` names an eval of ``suite`` reports."""
    tasks = [f"{task.name}/{metric}" for task in suite.tasks
             for metric in (ZEROSHOT_METRICS if task.kind == "zeroshot" else RETRIEVAL_METRICS)]
    return list(suite.headline), tasks


def _objective(study: Study, where: str) -> None:
    metric = study.objective.metric
    for value in effective_values(study, "eval.suite"):
        if value is not None and not isinstance(value, str):
            continue
        suite = _loaded(where, "eval.suite", lambda value=value: load_suite(value))
        headline, tasks = suite_metrics(suite)
        if metric not in headline and metric not in tasks:
            names = sorted({task.split("/")[0] for task in tasks})
            raise ConfigError(where, f"objective.metric: {metric!r} is not a metric of the eval suite "
                                     f"{value or 'default'!r}; it reports the headline columns "
                                     f"{', '.join(headline) or '(none)'} and TASK/METRIC for the tasks "
                                     f"{', '.join(names)} (e.g. {tasks[0]})")


def check_names(study: Study, where: str, ws: Workspace | None) -> None:
    """Every dataset, teacher, captioner, suite and metric name the study uses exists.

    Datasets and the suites' location need the workspace; without one (a library caller that has
    none), those two checks are left to the stages that read them.
    """
    if ws is not None:
        _datasets(study, where, ws)
    _suites(study, where, ws)
    _released(study, where)
    _teachers(study, where)
    _captioners(study, where)
    _objective(study, where)


def load_checked(path: str | Path, ws: Workspace | None = None) -> Study:
    """Load a study file (``config.study.load_study``) and check every name it uses against what exists.

    ``ws`` adds the checks that need a workspace: imported dataset names and that suites lie inside the
    project or the workspace. Nothing is expanded: this is what ``study validate`` and ``study run`` check
    before any grid point is resolved.
    """
    study = load_study(path)
    check_names(study, str(path), ws)
    return study
