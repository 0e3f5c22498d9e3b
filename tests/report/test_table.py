"""Report tables: mean ± std over seeds, axis order from the study file, newest run per point."""

import pandas as pd
import pytest

from workbench.config.study import Study
from workbench.report.table import build_table

STUDY = Study.model_validate({
    "study": "t", "seeds": 2,
    "axes": {"data": {"key": "data.train", "values": [["glyphs"], ["clipart-web"]]},
             "lr": {"key": "train.lr", "values": [0.001, 0.003]}},
    "table": {"rows": ["data"], "columns": "lr", "metrics": ["avg"]},
})


def run_row(data, lr, seed, avg, start=0, point=None, stderr=0.01):
    return {"tags.workbench.axis.data": data, "tags.workbench.axis.lr": lr, "tags.workbench.seed": seed,
            "tags.workbench.point_id": point or f"{data}-{lr}-{seed}", "metrics.eval/avg": avg,
            "metrics.chance/avg": 0.1, "metrics.stderr/avg": stderr, "start_time": start}


def test_cells_are_mean_and_std_over_seeds_in_file_order():
    runs = pd.DataFrame([run_row(d, lr, s, avg) for d, lr, s, avg in [
        ("clipart-web", "0.001", 0, 0.2), ("clipart-web", "0.001", 1, 0.4),
        ("glyphs", "0.001", 0, 0.5), ("glyphs", "0.001", 1, 0.7),
        ("glyphs", "0.003", 0, 0.6), ("glyphs", "0.003", 1, 0.6)]])
    table = build_table(STUDY, runs, "t")
    assert list(table.table.index) == ["glyphs", "clipart-web"]
    assert list(table.table.columns) == ["0.001", "0.003"]
    assert table.table.loc["glyphs", "0.001"] == "**0.6000 ± 0.1414**"  # the row's best (a tie: the first)
    assert table.means.loc["clipart-web", "0.001"] == pytest.approx(0.3)
    assert table.table.loc["clipart-web", "0.003"] == "–"
    assert "Chance: avg 0.1000" in table.to_markdown()


def test_newest_run_of_a_point_wins():
    runs = pd.DataFrame([run_row("glyphs", "0.001", 0, 0.1, start=1, point="p"),
                         run_row("glyphs", "0.001", 0, 0.9, start=2, point="p")])
    table = build_table(STUDY, runs, "t")
    assert table.means.loc["glyphs", "0.001"] == pytest.approx(0.9)


def test_no_runs_says_what_to_do():
    with pytest.raises(LookupError, match="workbench study run"):
        build_table(STUDY, pd.DataFrame(), "t")


def by_row(study: Study) -> Study:
    return study.model_copy(update={"table": study.table.model_copy(update={"best": "row"})})


def test_the_best_row_of_each_column_is_bold_and_cells_within_its_std_are_on_par():
    runs = pd.DataFrame([run_row(d, lr, s, avg) for d, lr, s, avg in [
        ("glyphs", "0.001", 0, 0.50), ("glyphs", "0.001", 1, 0.70),            # 0.60 ± 0.14: the best
        ("clipart-web", "0.001", 0, 0.45), ("clipart-web", "0.001", 1, 0.55),  # 0.50: within 0.14 of it
        ("glyphs", "0.003", 0, 0.30), ("glyphs", "0.003", 1, 0.31),            # 0.305 ± 0.007
        ("clipart-web", "0.003", 0, 0.20), ("clipart-web", "0.003", 1, 0.21)]])  # 0.205: 0.1 below it
    table = build_table(STUDY, runs, "t")
    assert table.table.loc["glyphs", "0.001"] == "**0.6000 ± 0.1414**"
    assert table.table.loc["clipart-web", "0.001"] == "_0.5000 ± 0.0707_"
    assert table.table.loc["glyphs", "0.003"] == "**0.3050 ± 0.0071**"
    assert table.table.loc["clipart-web", "0.003"] == "0.2050 ± 0.0071"
    assert "Bold: the best data of each column" in table.to_markdown()


def test_the_best_column_of_each_row_is_bold_when_the_table_says_best_row():
    runs = pd.DataFrame([run_row(d, lr, s, avg) for d, lr, s, avg in [
        ("glyphs", "0.001", 0, 0.5), ("glyphs", "0.003", 0, 0.7),
        ("clipart-web", "0.001", 0, 0.4), ("clipart-web", "0.003", 0, 0.2)]])
    table = build_table(by_row(STUDY), runs, "t")
    assert table.table.loc["glyphs", "0.003"] == "**0.7000**" and table.table.loc["glyphs", "0.001"] == "0.5000"
    assert table.table.loc["clipart-web", "0.001"] == "**0.4000**"
    assert "Bold: the best lr of each row by mean avg" in table.to_markdown()
    minimizing = by_row(STUDY).model_copy(update={"objective": STUDY.objective.model_copy(update={"direction": "minimize"})})
    assert build_table(minimizing, runs, "t").table.loc["glyphs", "0.001"] == "**0.5000**"


def test_a_cell_with_any_seed_near_chance_is_marked():
    runs = pd.DataFrame([run_row(d, lr, s, avg, stderr=se) for d, lr, s, avg, se in [
        ("glyphs", "0.001", 0, 0.5, 0.01), ("glyphs", "0.001", 1, 0.12, 0.01),   # seed 1: z = 2
        ("glyphs", "0.003", 0, 0.14, 0.01), ("glyphs", "0.003", 1, 0.6, 0.01),   # z = 4 and 50
        ("clipart-web", "0.001", 0, 0.3, float("nan"))]])                        # no stderr: no mark
    table = build_table(by_row(STUDY), runs, "t")
    assert table.table.loc["glyphs", "0.001"] == "_0.3100 ± 0.2687_ †"  # on par with 0.37 ± 0.33
    assert table.table.loc["glyphs", "0.003"] == "**0.3700 ± 0.3253**"
    assert table.table.loc["clipart-web", "0.001"] == "0.3000"  # alone in its row: nothing to be best of
    assert "†: fewer than 3 standard errors above chance in at least one seed" in table.to_markdown()
    unmarked = runs.drop(columns="metrics.stderr/avg")
    assert "†" not in build_table(by_row(STUDY), unmarked, "t").to_markdown()


def test_a_table_without_rows_is_one_line_per_metric():
    study = STUDY.model_copy(update={"table": STUDY.table.model_copy(update={"rows": [], "columns": None})})
    runs = pd.DataFrame([run_row("glyphs", "0.001", 0, 0.5), run_row("glyphs", "0.003", 0, 0.11)])
    table = build_table(study, runs, "t")
    assert table.table.loc["t", "avg"] == "0.3050 ± 0.2758 †"
