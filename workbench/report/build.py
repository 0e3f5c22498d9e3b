"""``workbench report``: read a study's runs from MLflow, render its table, write it to reports/."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd

from workbench.config.study import ROW_SEPARATOR, Study, load_study
from workbench.report.cost import amortise
from workbench.report.efficiency import efficiency, efficiency_cells, render
from workbench.report.formats import write_report
from workbench.report.provenance import THREADS, provenance
from workbench.report.search import search_report, write_search_report
from workbench.report.students import STORE, fused_latency
from workbench.report.table import StudyTable, build_table, latest_per_point
from workbench.stages.ledger import COST_ARTIFACT
from workbench.tracking.mlflow_store import TAG_PREFIX, Tracker
from workbench.workspace import Workspace


def study_report(path: str | Path, ws: Workspace, profile: str | None = None, out_dir: Path | None = None,
                 points: set[str] | None = None) -> tuple[str, list[Path]]:
    """The rendered Markdown table, and the files written (none when ``out_dir`` is None).

    ``points``: the ids of the grid points the file defines now (``workbench.study.trials.point_ids``);
    runs of others (an edited recipe, a removed axis value) are left out. None keeps every run."""
    study = load_study(path)
    profile = profile or study.profile
    tracker = Tracker(ws)
    runs = tracker.trial_runs(study.experiment(profile))
    if not runs.empty and points is not None:
        runs = runs[runs[f"tags.{TAG_PREFIX}point_id"].isin(points)]
    paper = "" if not study.paper else f" — {study.paper.name}" + (
        "" if study.paper.table is None else f" Tab. {study.paper.table}" if str(study.paper.table).isdigit()
        else f", {study.paper.table}")
    title = f"{study.title or study.study}{paper} (profile {profile})"
    shown = latest_per_point(runs)
    per_run, cost_lines = amortise({run_id: _ledger(tracker, run_id) for run_id in shown.get("run_id", [])})
    if not runs.empty and "run_id" in per_run and len(per_run.columns) > 1:
        runs = runs.merge(per_run, on="run_id", how="left")
    table = search_report(study, runs, title) if study.search else build_table(study, runs, title)
    if not study.search:
        table.curves = _curves(tracker, latest_per_point(runs), table)
    if study.table.efficiency:
        table.efficiency, table.efficiency_note = _efficiency(study, latest_per_point(runs))
    flag = f" --profile {profile}" if profile != study.profile else ""
    table.command = f"workbench report {path}{flag}"
    shown = shown.assign(**{THREADS: [_trained_threads(tracker, row) for _, row in shown.iterrows()]})
    table.provenance = provenance(shown, f"workbench study run {path}{flag}", table.command, _layouts(ws))
    table.cost = cost_lines
    if not study.search:
        attach_latency(study, table, Path(out_dir or "reports") / STORE)
    written: list[Path] = []
    if out_dir is not None:
        stem = study.study if profile == "micro" else f"{study.study}-{profile}"
        write = write_search_report if study.search else write_report
        written = write(table, Path(out_dir) / study.study, stem)
    return table.to_markdown(), written


def attach_latency(study: Study, table: StudyTable, store: Path) -> str:
    """Give each cell its student's fused latency (``cells["latency_ms"]``) and the table the device they
    were timed on, where a row or column axis sets ``model.name`` and ``store`` timed those students;
    return that device ("" if none)."""
    device, latency = fused_latency(store)
    for name in [*table.row_axes, *([table.column_axis] if table.column_axis else [])]:
        axis = study.axes[name]
        students = axis.zip.get("model.name") if axis.zip else axis.values if axis.key == "model.name" else None
        if not students or table.cells.empty or not all(s in latency for s in students):
            continue
        of_label = dict(zip(axis.display_labels, students))
        table.cells["latency_ms"] = table.cells[name].astype(str).map(lambda label: latency[of_label[label]])
        table.latency_device = device
        return device
    return ""


def _layouts(ws: Workspace) -> dict[str, int]:
    """Fingerprint → data layout version, for every dataset built in the workspace."""
    from workbench.data.shards import read_manifest

    manifests = (read_manifest(path.parent) for path in ws.data_dir.glob("*/manifest.json"))
    return {m["fingerprint"]: m.get("layout_version", 1) for m in manifests}


def _curves(tracker: Tracker, runs: pd.DataFrame, table: StudyTable) -> pd.DataFrame:
    """The first metric's history in each run (the evals during training), with the run's labels."""
    axes = [*table.row_axes, *([table.column_axis] if table.column_axis else [])]
    history = tracker.metric_history(list(runs["run_id"]), f"eval/{table.metrics[0]}")
    labels = runs[["run_id", *(f"tags.{TAG_PREFIX}axis.{a}" for a in axes)]]
    return history.merge(labels.rename(columns={f"tags.{TAG_PREFIX}axis.{a}": a for a in axes}), on="run_id")


def _efficiency(study: Study, runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Samples each row needs to reach the reference's score at its largest budget (``report.efficiency``)."""
    rows, metric = study.table.rows, study.table.metrics[0]
    row_of = runs[[f"tags.{TAG_PREFIX}axis.{r}" for r in rows]].astype(str).agg(ROW_SEPARATOR.join, axis=1)
    cells = efficiency_cells(runs, f"metrics.eval/{metric}", row_of)
    reference = study.table.reference
    if reference not in cells or len(cells) < 2:
        return pd.DataFrame(), f"No learning efficiency: the runs lack the reference row {reference!r} or any other row."
    return render(efficiency(cells, reference, study.objective.direction == "maximize"), metric)


def _ledger(tracker: Tracker, run_id: str) -> dict | None:
    """A run's cost ledger; None for a run made before ledgers were logged."""
    try:
        return json.loads(_artifact_text(tracker, run_id, COST_ARTIFACT))
    except (OSError, ValueError):
        return None


def _trained_threads(tracker: Tracker, run: pd.Series) -> float:
    """The torch thread count the run's training recorded in its summary; else its recipe's
    ``train.threads`` when that pins a count (0 means "every core" of a machine we no longer know)."""
    try:
        return float(json.loads(_artifact_text(tracker, run["run_id"], "train/summary.json"))["threads"])
    except (OSError, KeyError, ValueError):  # an older run without the summary, or its artifacts are gone
        pinned = pd.to_numeric(run.get("params.train.threads"), errors="coerce")
        return float(pinned) if pd.notna(pinned) and pinned > 0 else float("nan")


def _artifact_text(tracker: Tracker, run_id: str, path: str) -> str:
    """A run's artifact as text: read in place from a local store, else downloaded."""
    uri = tracker.client.get_run(run_id).info.artifact_uri
    if uri.startswith("file:"):
        return (Path(url2pathname(urlparse(uri).path)) / path).read_text()
    try:
        return Path(tracker.client.download_artifacts(run_id, path)).read_text()
    except Exception as error:  # the store's own error type: report it as a missing file
        raise OSError(f"{run_id}: {path}: {error}") from error
