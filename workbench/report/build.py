"""``workbench report``: read a study's runs from MLflow, render its table, write it to reports/."""

from __future__ import annotations

from pathlib import Path

from workbench.config.study import load_study
from workbench.report.table import build_table, write_report
from workbench.tracking.mlflow_store import TAG_PREFIX, Tracker
from workbench.workspace import Workspace


def study_report(path: str | Path, ws: Workspace, profile: str | None = None,
                 out_dir: Path | None = None) -> tuple[str, list[Path]]:
    """The rendered Markdown table, and the files written (none when ``out_dir`` is None)."""
    from workbench.study.orchestrate import study_name
    from workbench.study.trials import expand_grid

    study = load_study(path)
    profile = profile or study.profile
    runs = Tracker(ws).trial_runs(study_name(study, profile))
    if not runs.empty and not study.search:  # only the points the file defines now
        points = {spec.point_id for spec in expand_grid(study, path, profile)}
        runs = runs[runs[f"tags.{TAG_PREFIX}point_id"].isin(points)]
    paper = f" — {study.paper.name} Tab. {study.paper.table}" if study.paper else ""
    title = f"{study.title or study.study}{paper} (profile {profile})"
    table = build_table(study, runs, title)
    table.command = f"workbench report {path}" + (f" --profile {profile}" if profile != study.profile else "")
    written: list[Path] = []
    if out_dir is not None:
        stem = study.study if profile == "micro" else f"{study.study}-{profile}"
        written = list(write_report(table, Path(out_dir), stem))
    return table.to_markdown(), written
