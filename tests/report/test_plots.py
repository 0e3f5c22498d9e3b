"""Learning curves: one panel per column, except training budgets, which share one samples-seen axis."""

import pandas as pd

from workbench.config.study import Study
from workbench.report.plots import curve_figure
from workbench.report.table import build_table

STUDY = Study.model_validate({
    "study": "curves", "seeds": 2,
    "axes": {"method": {"key": "distill.lam", "values": [0.0, 1.0], "labels": ["plain", "kd"]},
             "budget": {"key": "train.steps_scale", "values": [0.5, 1.0]}},
    "table": {"rows": "method", "columns": "budget", "metrics": ["avg"], "reference": "plain"}})


def table():
    runs = pd.DataFrame([{"tags.workbench.axis.method": m, "tags.workbench.axis.budget": b,
                          "tags.workbench.seed": str(seed), "tags.workbench.point_id": f"{m}{b}{seed}",
                          "run_id": f"r{m}{b}{seed}", "start_time": 0, "metrics.eval/avg": 0.1 + 0.01 * seed,
                          "metrics.chance/avg": 0.05, "metrics.stderr/avg": 0.01}
                         for m in ("plain", "kd") for b in ("0.5", "1.0") for seed in (0, 1)])
    built = build_table(STUDY, runs, "Curves")
    built.curves = pd.DataFrame([{"run_id": f"r{m}{b}{seed}", "step": step, "value": 0.1 + step / 1e5,
                                  "method": m, "budget": b}
                                 for m in ("plain", "kd") for b, steps in (("0.5", (500, 1000)),
                                                                           ("1.0", (500, 1000, 1500, 2000)))
                                 for seed in (0, 1) for step in steps])
    return built


def drawn(ax):
    """The curves and end points of a panel, without its chance level."""
    return [line for line in ax.get_lines() if line.get_label() != "chance"]


def test_columns_are_panels():
    figure = curve_figure(table())
    assert len(figure.axes) == 2
    assert all(ax.get_xscale() == "linear" and len(drawn(ax)) == 2 for ax in figure.axes)  # a line a row


def test_training_budgets_share_one_log_axis_each_row_one_colour():
    budgets = table()
    budgets.efficiency = pd.DataFrame([{"row": "kd", "ratio": 1.0}])  # what a table with `efficiency` carries
    (ax,) = curve_figure(budgets).axes
    assert ax.get_xscale() == "log"
    curves = [line for line in drawn(ax) if line.get_linestyle() != "None"]
    ends = [line for line in drawn(ax) if line.get_marker() == "D"]
    assert len(curves) == 4 and len(ends) == 4  # a line and an end point per row and budget
    assert {line.get_xdata()[-1] for line in ends} == {1000, 2000}
    assert len({line.get_color() for line in curves}) == 2
    assert sorted(text.get_text() for text in ax.get_legend().get_texts()) == ["chance", "kd", "plain"]  # rows once each


def test_runs_that_evaluated_once_have_no_curve():
    once = table()
    once.curves = once.curves[once.curves["step"] == 1000]
    assert curve_figure(once) is None


def test_a_long_legend_goes_beside_the_panels():
    many = table()
    many.curves = pd.concat([many.curves.assign(method=f"{m}{i}") for i in range(4) for m in ("plain", "kd")])
    many.cells = pd.concat([many.cells.assign(method=f"{m}{i}") for i in range(4) for m in ("plain", "kd")])
    figure = curve_figure(many)
    assert all(ax.get_legend() is None for ax in figure.axes)
    (legend,) = figure.legends
    assert len(legend.get_texts()) == 9  # eight rows and chance
