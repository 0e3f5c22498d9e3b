"""A report's transfer column averages the same tasks for every row: those no run in the table has seen."""

import math

import pandas as pd
import pytest

from workbench.report.transfer import common_transfer


def runs_with(unseen: list[str]) -> pd.DataFrame:
    rows = []
    for i, tasks in enumerate(unseen):
        row = {"tags.workbench.lineage.unseen": tasks, "params.eval.suite": None}
        for task, value in (("zs_digits", 0.3), ("zs_fashion_mnist", 0.2), ("ret_emoji", 0.1)):
            metric = "r5" if task.startswith("ret_") else "balanced_acc"
            row |= {f"metrics.eval/{task}/{metric}": value + i, f"metrics.chance/{task}/{metric}": 0.1,
                    f"metrics.stderr/{task}/{metric}": 0.03}
        rows.append(row)
    return pd.DataFrame(rows)


def test_rows_share_the_tasks_no_run_has_seen():
    runs, note = common_transfer(runs_with(["zs_fashion_mnist,zs_digits,ret_emoji", "zs_fashion_mnist,zs_digits"]))
    assert list(runs["metrics.eval/transfer"]) == pytest.approx([0.25, 1.25])  # ret_emoji is left out for both
    assert list(runs["metrics.stderr/transfer"]) == pytest.approx([math.sqrt(2 * 0.03 ** 2) / 2] * 2)
    assert "2 tasks" in note and "zs_fashion_mnist/balanced_acc, zs_digits/balanced_acc" in note


def test_no_common_task_or_no_lineage_shows_nothing():
    runs, note = common_transfer(runs_with(["zs_digits", "ret_emoji"]))
    assert runs["metrics.eval/transfer"].isna().all() and "no task is unseen by every run" in note
    runs, note = common_transfer(runs_with(["zs_digits", None]))
    assert runs["metrics.eval/transfer"].isna().all() and "recorded no lineage" in note
