"""Learning efficiency: samples to reach the reference's final score, with a bootstrap interval."""

import math

import numpy as np
import pandas as pd
import pytest

from workbench.config.study import Study
from workbench.report.efficiency import efficiency, efficiency_cells, samples_to_reach


def test_the_crossing_is_interpolated_in_log_samples():
    samples = np.array([100.0, 400.0, 1600.0])
    assert samples_to_reach(samples, np.array([0.1, 0.2, 0.3]), 0.25, maximize=True) == pytest.approx(800.0)
    assert samples_to_reach(samples, np.array([0.1, 0.2, 0.3]), 0.05, maximize=True) == 100.0  # at once
    assert samples_to_reach(samples, np.array([0.1, 0.2, 0.3]), 0.5, maximize=True) == math.inf
    assert samples_to_reach(samples, np.array([0.3, 0.2, 0.1]), 0.25, maximize=False) == pytest.approx(200.0)


def noisy(center: float) -> np.ndarray:
    return center + np.array([-0.002, -0.001, 0.0, 0.001, 0.002])


def test_a_row_that_gets_there_four_times_sooner_has_ratio_four():
    cells = {"plain": {1000.0: noisy(0.10), 4000.0: noisy(0.20), 16000.0: noisy(0.30)},
             "kd": {1000.0: noisy(0.20), 4000.0: noisy(0.30), 16000.0: noisy(0.35)},
             "worse": {1000.0: noisy(0.05), 4000.0: noisy(0.10), 16000.0: noisy(0.15)}}
    lines = efficiency(cells, "plain", maximize=True).set_index("row")
    assert lines.loc["kd", "ratio"] == pytest.approx(4.0) and lines.loc["kd", "bound"] == ""
    assert lines.loc["kd", "ci_low"] < 4.0 < lines.loc["kd", "ci_high"] < 8.0
    assert math.isnan(lines.loc["worse", "ratio"]) and lines.loc["worse", "bound"] == "not reached"
    assert lines.loc["worse", "ci_high"] == 0.0


def test_a_table_names_a_budget_column_and_a_reference():
    spec = {"study": "e", "axes": {"method": {"key": "distill.lam", "values": [0.0, 1.0]},
                                   "budget": {"key": "train.steps_scale", "values": [0.5, 1.0]}}}
    Study.model_validate({**spec, "table": {"rows": "method", "columns": "budget", "reference": "0.0",
                                            "efficiency": "budget"}})
    with pytest.raises(ValueError, match="efficiency names the `columns` axis"):
        Study.model_validate({**spec, "table": {"rows": "method", "columns": "budget", "efficiency": "budget"}})


def test_cells_come_from_the_runs_steps_and_batch():
    runs = pd.DataFrame({"params.train.steps": ["100", "100", "200"], "params.train.batch_size": ["8", "8", "8"],
                         "metrics.eval/avg": [0.1, 0.2, 0.3]})
    cells = efficiency_cells(runs, "metrics.eval/avg", pd.Series(["a", "a", "a"]))
    assert set(cells["a"]) == {800.0, 1600.0} and list(cells["a"][800.0]) == [0.1, 0.2]


def test_a_report_measures_each_row_against_the_reference_at_its_largest_budget():
    from workbench.report.build import _efficiency

    study = Study.model_validate({
        "study": "e", "seeds": 3,
        "axes": {"budget": {"key": "train.steps_scale", "values": [0.25, 1.0]},
                 "method": {"key": "distill.lam", "values": [0.0, 1.0], "labels": ["plain", "kd"]}},
        "table": {"rows": "method", "columns": "budget", "reference": "plain", "efficiency": "budget",
                  "metrics": ["avg"]}})
    score = {("plain", "250"): 0.1, ("plain", "1000"): 0.2, ("kd", "250"): 0.2, ("kd", "1000"): 0.25}
    runs = pd.DataFrame([{"tags.workbench.axis.method": m, "tags.workbench.axis.budget": b,
                          "params.train.steps": b, "params.train.batch_size": "10",
                          "metrics.eval/avg": score[m, b] + 0.001 * seed}
                         for (m, b) in score for seed in range(3)])
    shown, note = _efficiency(study, runs)
    assert list(shown["row"]) == ["kd"] and shown["× fewer samples"].item() == "≥ 4.00"  # there at its smallest
    assert shown["reference samples"].item() == "10,000" and "bootstrap" in note
