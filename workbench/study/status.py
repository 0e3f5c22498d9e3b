"""``workbench study status``: each trial's state in the study's Optuna storage."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from workbench.config.study import load_study
from workbench.study.orchestrate import DEAD_WORKER, open_optuna_study
from workbench.study.trials import expand_grid
from workbench.workspace import Workspace


def render_status(path: str | Path, ws: Workspace, profile: str | None = None, show_all: bool = False) -> str:
    """One line per trial. In a grid, trials of points the study file no longer has (an axis value
    edited away, a changed recipe) are counted, and listed only with ``show_all``."""
    study = load_study(path)
    profile = profile or study.profile
    trials = open_optuna_study(study, profile, ws).get_trials(deepcopy=False)
    titles = {} if study.search else {s.point_id: s.title for s in expand_grid(study, path, profile)}
    lines = [f"{study.experiment(profile)}: " + ", ".join(f"{n} {s.name.lower()}" for s, n in
                                                          Counter(t.state for t in trials).items())]
    if not study.search:
        done = {t.user_attrs.get("point_id") for t in trials if t.state.name == "COMPLETE"}
        lines.append(f"grid: {len(done & set(titles))}/{len(titles)} points complete")
        stale = [t for t in trials if t.user_attrs.get("point_id") not in titles]
        if stale and not show_all:
            trials = [t for t in trials if t.user_attrs.get("point_id") in titles]
            lines.append(f"({len(stale)} trials of points no longer in the study file are not listed; --all lists them)")
    retried_as = {n: t.number for t in trials for n in t.system_attrs.get("retry_history", [])[-1:]}
    for t in trials:
        value = f"{t.value:.4f}" if t.value is not None else "–"
        title = titles.get(t.user_attrs.get("point_id"), f"{t.params} (no longer in the study file)")
        reason = t.user_attrs.get("fail_reason") or (f"{DEAD_WORKER}; queued again as #{retried_as[t.number]}"
                                                     if t.number in retried_as else "")
        reason = f"  ({reason})" if reason else ""
        lines.append(f"  #{t.number:<4} {t.state.name:9} {value:>8}  {title}{reason}")
    return "\n".join(lines)
