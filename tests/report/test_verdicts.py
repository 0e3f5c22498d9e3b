"""Reports with a control row: verdicts in the Markdown, a numeric CSV, and the runs' provenance."""

import itertools
import json

import pandas as pd
import pytest

from workbench.config.study import Study, load_study
from workbench.report.build import study_report
from workbench.report.formats import write_report
from workbench.report.table import build_table

BASE = {"plain": 0.100, "same": 0.100, "kd": 0.120}
SPREAD = [-0.002, 0.0, 0.002, -0.001, 0.001]


def study(seeds=5, **table) -> Study:
    return Study.model_validate({
        "study": "t", "seeds": seeds,
        "axes": {"method": {"key": "distill.lam", "values": [0.0, 0.5, 1.0], "labels": list(BASE)},
                 "lr": {"key": "train.lr", "values": [0.001, 0.003]}},
        "table": {"rows": ["method"], "metrics": ["avg"], "reference": "plain", **table}})


def runs(seeds=5, lr_gap=0.01) -> pd.DataFrame:
    rows = []
    for method, lr, seed in itertools.product(BASE, ["0.001", "0.003"], range(seeds)):
        rows.append({"tags.workbench.axis.method": method, "tags.workbench.axis.lr": lr,
                     "tags.workbench.seed": str(seed), "tags.workbench.point_id": f"{method}-{lr}-{seed}",
                     "run_id": f"run-{method}-{lr}-{seed}", "start_time": 0,
                     "metrics.eval/avg": BASE[method] + SPREAD[seed % 5] + (lr_gap if lr == "0.003" else 0),
                     "metrics.chance/avg": 0.05, "metrics.stderr/avg": 0.003})
    return pd.DataFrame(rows)


def test_each_row_gets_a_verdict_against_the_reference():
    table = build_table(study(), runs(), "t")
    verdicts = table.verdicts.set_index("method")
    assert list(verdicts.index) == ["same", "kd"]  # the reference itself is not compared
    assert verdicts.loc["kd", "verdict"] == "better" and verdicts.loc["kd", "difference"] == "+0.0200"
    assert verdicts.loc["same", "verdict"] == "no detectable difference"
    markdown = table.to_markdown()
    assert "## Against the reference: plain" in markdown and "95% Welch t interval" in markdown
    assert "‡" not in markdown  # five seeds a side


def test_with_columns_each_column_is_compared_with_the_reference_in_that_column():
    table = build_table(study(columns="lr"), runs(lr_gap=0.05), "t")
    kd = table.verdicts[table.verdicts["method"] == "kd"]
    assert list(kd["lr"]) == ["0.001", "0.003"]
    assert list(kd["difference"]) == ["+0.0200", "+0.0200"]  # not the +0.07 across columns


def test_with_columns_the_first_metric_fills_the_cells_and_every_metric_gets_verdicts():
    frame = runs()
    frame = frame.assign(**{"metrics.eval/zeroshot": 0.3 - frame["metrics.eval/avg"],  # kd: worse here
                            "metrics.stderr/zeroshot": 0.003})
    table = build_table(study(columns="lr", metrics=["avg", "zeroshot"]), frame, "t")
    assert table.text.loc["kd", "0.001"].startswith("0.1200")  # avg, the first metric
    kd = table.verdicts[table.verdicts["method"] == "kd"].set_index(["lr", "metric"])["verdict"]
    assert kd.to_dict() == {("0.001", "avg"): "better", ("0.001", "zeroshot"): "worse",
                            ("0.003", "avg"): "better", ("0.003", "zeroshot"): "worse"}
    assert set(table.cells["metric"]) == {"avg", "zeroshot"}  # the CSV's numbers for both


def test_fewer_than_five_seeds_are_flagged_however_many_runs_a_cell_pools():
    table = build_table(study(seeds=3), runs(seeds=3), "t")
    assert table.verdicts["runs"].iloc[0] == "6 vs 6 ‡"  # two lr values × three seeds
    markdown = table.to_markdown()
    assert "headline comparisons need ≥ 5 seeds" in markdown
    assert "mean ± std over 3 seed(s) × every lr." in markdown and "Cells pool every value of lr" in markdown


def test_missing_item_errors_and_a_reference_without_runs_are_said():
    table = build_table(study(), runs().drop(columns="metrics.stderr/avg"), "t")
    assert table.verdicts["verdict"].str.endswith(" §").all()
    assert "§ a side's runs logged no item standard error" in table.to_markdown()
    no_control = runs()[lambda r: r["tags.workbench.axis.method"] != "plain"]
    assert set(build_table(study(), no_control, "t").verdicts["verdict"]) == {"reference has no runs"}
    only_control = runs()[lambda r: r["tags.workbench.axis.method"] == "plain"]
    assert "No other row has runs to compare with it." in build_table(study(), only_control, "t").to_markdown()


def test_without_a_reference_the_report_says_nothing_was_tested():
    plain = study()
    plain = plain.model_copy(update={"table": plain.table.model_copy(update={"reference": None})})
    table = build_table(plain, runs(), "t")
    assert "no verdicts" in table.to_markdown() and table.verdicts.empty


def test_the_csv_is_numeric_with_per_seed_values_and_run_ids(tmp_path):
    table = build_table(study(), runs(), "t")
    write_report(table, tmp_path, "t")
    frame = pd.read_csv(tmp_path / "t.csv")
    assert list(frame.columns[:7]) == ["method", "metric", "n", "seeds", "mean", "std", "item_se"]
    for column in ("n", "seeds", "mean", "std", "item_se", "diff", "ci_low", "ci_high", "df", "value_seed_0"):
        assert pd.api.types.is_numeric_dtype(frame[column]), column
    kd = frame.set_index("method").loc["kd"]
    assert kd["n"] == 10 and kd["verdict"] == "better" and kd["ci_low"] > 0  # both lr values share the row
    assert kd["value_seed_4"] == pytest.approx(0.121) and kd["run_id_seed_4"].startswith("run-kd-")
    assert frame.set_index("method").loc["plain", "verdict"] == "reference"


def test_contrasts_compare_named_pairs_of_rows_in_every_format(tmp_path):
    table = build_table(study(contrasts=[["kd", "same"], ["same", "kd"]]), runs(), "t")
    shown = table.contrasts.set_index(["row", "against"])
    assert shown.loc[("kd", "same"), "verdict"] == "better" and shown.loc[("kd", "same"), "difference"] == "+0.0200"
    assert shown.loc[("same", "kd"), "verdict"] == "worse"
    assert "## Contrasts" in table.to_markdown()
    written = write_report(table, tmp_path, "t")
    frame = pd.read_csv(tmp_path / "t-contrasts.csv")
    assert tmp_path / "t-contrasts.csv" in written and len(frame) == 2
    assert all(pd.api.types.is_numeric_dtype(frame[c]) for c in ("n", "diff", "ci_low", "ci_high", "df"))
    assert frame.loc[0, "ci_low"] > 0 and "<h2>Contrasts</h2>" in (tmp_path / "t.html").read_text()
    write_report(build_table(study(), runs(), "t"), tmp_path, "t")  # none asked: no stale file left
    assert not (tmp_path / "t-contrasts.csv").exists()


def test_a_reference_over_two_row_axes_joins_their_labels():
    two = study(rows=["method", "lr"], reference="plain / 0.003")
    table = build_table(two, runs(), "t")
    assert len(table.verdicts) == 5 and table.to_markdown().count("## Against the reference: plain / 0.003") == 1
    same_lr = table.verdicts[(table.verdicts["method"] == "plain") & (table.verdicts["lr"] == "0.001")]
    assert same_lr["difference"].item() == "−0.0100" and same_lr["verdict"].item() == "worse"


STUDY_FILE = """\
study: verdicts
axes:
  method: {key: distill.lam, values: [0.0, 1.0], labels: [plain, kd]}
seeds: 3
table: {rows: method, metrics: [avg], reference: plain}
"""


def test_report_from_mlflow_runs_states_its_provenance_and_disagreements(tmp_path):
    from workbench.study.trials import expand_grid
    from workbench.tracking.mlflow_store import Tracker
    from workbench.workspace import Workspace

    path = tmp_path / "verdicts.yaml"
    path.write_text(STUDY_FILE)
    ws = Workspace.resolve(tmp_path / "ws").ensure()
    tracker = Tracker(ws)
    experiment = load_study(path).experiment("micro")
    parent = tracker.start_run(experiment, "study", {"workbench.kind": "study"})
    for i, spec in enumerate(expand_grid(load_study(path), path)):
        commit = "c0ffee" if i < 5 else "bead00"  # one run made at another commit
        tags = {"workbench.kind": "trial", "workbench.point_id": spec.point_id, "workbench.seed": spec.seed,
                "workbench.git_commit": commit, "workbench.data.clipart-web": "fp-clipart",
                **({"workbench.packages": "torch 2.14.1"} if i else {}),  # the first run predates the tag
                **{f"workbench.axis.{k}": v for k, v in spec.axis_labels.items()}}
        run_id = tracker.start_run(experiment, spec.title, tags, parent)
        tracker.log_params(run_id, {"train.threads": 1})
        avg = {"plain": 0.10, "kd": 0.13}[spec.axis_labels["method"]] + SPREAD[spec.seed]
        tracker.log_metrics(run_id, {"eval/avg": avg, "chance/avg": 0.05, "stderr/avg": 0.003}, 1)
        if i != 0:  # the first run's summary artifact is gone: its recipe's pinned count stands in
            summary = tmp_path / f"summary-{i}" / "summary.json"
            summary.parent.mkdir()
            summary.write_text(json.dumps({"threads": 2 if i == 1 else 1}))
            tracker.log_file(run_id, summary, "train")
        tracker.end_run(run_id, "FINISHED")
    tracker.end_run(parent, "FINISHED")
    ws.dataset_dir("clipart-web").mkdir(parents=True)  # the built data the runs' fingerprint names
    (ws.dataset_dir("clipart-web") / "manifest.json").write_text(
        json.dumps({"name": "clipart-web", "fingerprint": "fp-clipart", "layout_version": 2}))

    markdown, written = study_report(path, ws, out_dir=tmp_path / "reports")
    assert sorted(p.name for p in written) == ["verdicts.csv", "verdicts.html", "verdicts.md", "verdicts.png",
                                               "verdicts.tex"]
    assert {p.parent for p in written} == {tmp_path / "reports" / "verdicts"}  # reports/<study>/
    assert "| kd | avg | 3 vs 3 ‡ | +0.0300 |" in markdown and "| better |" in markdown
    provenance = markdown.split("## Provenance", 1)[1]
    assert f"Runs made by `workbench study run {path}` (1 invocation of it)" in provenance
    assert f"rendered by `workbench report {path}`" in provenance
    assert "**the runs disagree**: `c0ffee` (5 runs), `bead00` (1 run)" in provenance
    assert "Packages of the runs: **the runs disagree**: torch 2.14.1 (5 runs), not recorded (1 run)" in provenance
    assert "clipart-web `fp-clipart` (all 6 runs training on it)" in provenance
    assert "Data layout: v2 — content-level splits" in provenance
    assert "Torch threads of training and eval: **the runs disagree**: 1 (5 runs), 2 (1 run)" in provenance
    csv = pd.read_csv(tmp_path / "reports" / "verdicts" / "verdicts.csv")
    assert set(csv["n"]) == {3} and csv["run_id_seed_2"].str.len().min() == 32  # MLflow's run ids


def test_provenance_says_when_the_data_lacks_the_content_level_guarantee():
    from workbench.report.provenance import provenance

    runs = pd.DataFrame({"tags.workbench.data.glyphs": ["fp-old", "fp-old"]})
    assert "Data layout: v1; splits without the content-level guarantee" in "\n".join(
        provenance(runs, "run", "report", {"fp-old": 1}))
    assert "Data layout: unknown (no built dataset" in "\n".join(provenance(runs, "run", "report", {}))
