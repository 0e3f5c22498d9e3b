"""A study's table as the paper would print it: mean ± std over seeds, from the runs in MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from workbench.config.study import Study
from workbench.evaluate.spec import NEAR_CHANCE_Z
from workbench.tracking.mlflow_store import TAG_PREFIX

AXIS_TAG = f"tags.{TAG_PREFIX}axis."


@dataclass
class StudyTable:
    title: str
    table: pd.DataFrame       # formatted "mean ± std" cells
    means: pd.DataFrame       # numeric means, same shape
    chance: dict[str, float]  # chance level of each metric shown
    runs: int
    seeds: int
    command: str = ""
    """The command that renders this table again."""
    best_note: str = ""
    """Says which cells are bold (the best column of each row), when some are."""
    near_chance_note: str = ""
    """Says what a † marks, when some cell has one."""

    def to_markdown(self) -> str:
        lines = [f"# {self.title}", "",
                 f"{self.runs} runs; cells are mean ± std over {self.seeds} seed(s)."
                 + (f" Made by `{self.command}`." if self.command else ""), ""]
        lines.append(_markdown(self.table))
        notes = " ".join(note for note in (self.best_note, self.near_chance_note) if note)
        if notes:
            lines += ["", notes]
        if self.chance:
            lines += ["", "Chance: " + ", ".join(f"{k} {v:.4f}" for k, v in self.chance.items())]
        return "\n".join(lines) + "\n"


def _markdown(frame: pd.DataFrame) -> str:
    frame = frame.reset_index()
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def latest_per_point(runs: pd.DataFrame) -> pd.DataFrame:
    """One run per grid point: a point re-run after a cache wipe keeps only its newest run."""
    if runs.empty:
        return runs
    key = f"tags.{TAG_PREFIX}point_id"
    return runs.sort_values("start_time").groupby(key, as_index=False).tail(1)


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def build_table(study: Study, runs: pd.DataFrame, title: str) -> StudyTable:
    if runs.empty:
        raise LookupError(f"no finished trial runs for study {study.study!r}; run `workbench study run` first")
    runs = latest_per_point(runs)
    spec = study.table
    metrics = [spec.metrics[0]] if spec.columns else spec.metrics
    for metric in metrics:
        if f"metrics.eval/{metric}" not in runs:
            known = sorted(c.removeprefix("metrics.eval/") for c in runs if c.startswith("metrics.eval/"))
            raise LookupError(f"table metric {metric!r} is not in the runs; known: {', '.join(known)}")
    rows = spec.rows
    orders = {name: study.axes[name].display_labels for name in study.axes}
    frame = pd.DataFrame({name: runs[AXIS_TAG + name] for name in rows + ([spec.columns] if spec.columns else [])})
    for metric in metrics:
        frame[metric] = runs[f"metrics.eval/{metric}"].astype(float)
    by = rows + ([spec.columns] if spec.columns else [])
    if not by:
        frame["study"] = study.study
        by = ["study"]
    near = frame[by].assign(**{m: _near_chance(runs, m) for m in metrics})
    grouped = frame.groupby(by, sort=False)
    cells = grouped[metrics].agg(_cell)
    means = grouped[metrics].mean()
    flagged = near.groupby(by, sort=False)[metrics].any()
    if spec.columns:
        cells, means, flagged = (f[metrics[0]].unstack(spec.columns) for f in (cells, means, flagged))
        column_order = [c for c in orders[spec.columns] if c in cells.columns]
        cells, means, flagged = cells[column_order], means[column_order], flagged[column_order]
    if rows:
        index = pd.MultiIndex.from_product([orders[r] for r in rows], names=rows) if len(rows) > 1 \
            else pd.Index(orders[rows[0]], name=rows[0])
        present = [i for i in index if i in cells.index]
        cells, means, flagged = cells.loc[present], means.loc[present], flagged.loc[present]
    cells = cells.fillna("–")
    note = ""
    if spec.columns and len(means.columns) > 1:  # the paper's convention: the best column of each row in bold
        maximize = study.objective is None or study.objective.direction == "maximize"
        best = means.idxmax(axis=1) if maximize else means.idxmin(axis=1)
        for row, column in best.dropna().items():
            cells.loc[row, column] = f"**{cells.loc[row, column]}**"
        note = f"Bold: the best {spec.columns} of each row by mean {metrics[0]}."
    flagged = flagged.fillna(False).astype(bool)
    cells = cells.where(~flagged, cells + " †")
    near_note = ""
    if flagged.to_numpy().any():
        near_note = (f"†: fewer than {NEAR_CHANCE_Z:g} standard errors above chance in at least one seed "
                     "(z = (value − chance) / stderr, as `workbench eval` prints it).")
    chance = {m: float(runs[f"metrics.chance/{m}"].mean()) for m in metrics if f"metrics.chance/{m}" in runs}
    return StudyTable(title, cells, means, chance, len(runs), len(study.seed_list), best_note=note,
                      near_chance_note=near_note)


def _near_chance(runs: pd.DataFrame, metric: str) -> pd.Series:
    """Per run: is ``metric`` fewer than NEAR_CHANCE_Z standard errors above chance? (False when the run
    did not log its chance level or standard error.)"""
    columns = [f"metrics.{kind}/{metric}" for kind in ("eval", "chance", "stderr")]
    if not all(c in runs for c in columns):
        return pd.Series(False, index=runs.index)
    value, chance, stderr = (runs[c].astype(float) for c in columns)
    return value - chance < NEAR_CHANCE_Z * stderr  # NaN compares False


def write_report(table: StudyTable, out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv = out_dir / f"{stem}.md", out_dir / f"{stem}.csv"
    md.write_text(table.to_markdown())
    table.table.to_csv(csv)
    return md, csv
