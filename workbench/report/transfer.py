"""A report's ``transfer`` column: the same tasks for every row.

Each trial logs ``transfer`` over the tasks *its* lineage never trained on, so two rows may average
different tasks (a distilled row's teacher fitted on glyphs, a plain row's student did not). A table
compares rows, so its ``transfer`` column averages every run over the tasks that no run it shows has
seen — student, teachers and captioners alike — with chance and item standard error re-derived the same
way as a headline column's.
"""

from __future__ import annotations

import math

import pandas as pd

from workbench.evaluate.spec import TRANSFER
from workbench.tracking.mlflow_store import TAG_PREFIX

UNSEEN_TAG = f"tags.{TAG_PREFIX}lineage.unseen"
SUITE_PARAM = "params.eval.suite"


def common_transfer(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``runs`` with ``eval/``, ``chance/`` and ``stderr/transfer`` recomputed over the tasks unseen by
    every run (NaN when there are none), and a note naming those tasks."""
    from workbench.evaluate.spec import load_suite

    if UNSEEN_TAG not in runs or runs[UNSEEN_TAG].isna().any():
        return _not_shown(runs, "some runs recorded no lineage (made before it was logged)")
    suites = {_suite_name(value) for value in runs.get(SUITE_PARAM, pd.Series([None]))}
    if len(suites) > 1:
        return _not_shown(runs, "the runs were scored on different suites")
    common = set.intersection(*(set(filter(None, value.split(","))) for value in runs[UNSEEN_TAG]))
    tasks = [task for task in load_suite(suites.pop()).tasks if task.name in common]
    if not tasks:
        return _not_shown(runs, "no task is unseen by every run in this table")
    keys = [f"{task.name}/{task.primary}" for task in tasks]
    values = {kind: runs[[f"metrics.{kind}/{key}" for key in keys]].astype(float)
              for kind in ("eval", "chance", "stderr")}
    runs = runs.assign(**{f"metrics.eval/{TRANSFER}": values["eval"].mean(axis=1),
                          f"metrics.chance/{TRANSFER}": values["chance"].mean(axis=1),
                          f"metrics.stderr/{TRANSFER}": (values["stderr"] ** 2).sum(axis=1) ** 0.5 / len(keys)})
    return runs, (f"{TRANSFER}: mean primary metric of the {len(keys)} tasks that no run in this table — its "
                  f"student, teachers or captioners — trained on: {', '.join(keys)}.")


def _not_shown(runs: pd.DataFrame, why: str) -> tuple[pd.DataFrame, str]:
    """No transfer column (NaN in every run), and the note saying why."""
    return runs.assign(**{f"metrics.{kind}/{TRANSFER}": math.nan for kind in ("eval", "chance", "stderr")}), \
        f"{TRANSFER}: not shown — {why}."


def _suite_name(value) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) or value == "None" else value
