"""A shipped search study end to end under smoke: every trial trains its point at every seed, Optuna gets
their mean, and the report ranks the trials with Optuna's importances and the history plot."""

from pathlib import Path

import optuna
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from pylatexenc.latexwalker import LatexWalker

from workbench.cli import main
from workbench.config.study import load_study
from workbench.tracking.mlflow_store import Tracker
from workbench.tracking.stores import open_optuna_storage
from workbench.workspace import Workspace

STUDY = Path(__file__).parents[2] / "studies" / "baseline_search.yaml"


@pytest.mark.slow
def test_the_shipped_search_runs_every_seed_and_reports_importances(real_root, tmp_path):
    runner = CliRunner()
    ws = ["--workspace", str(real_root)]
    ran = runner.invoke(main, [*ws, "study", "run", str(STUDY), "--profile", "smoke", "--workers", "2",
                               "--no-report"])
    assert ran.exit_code == 0, ran.output
    study = load_study(STUDY)
    workspace = Workspace.resolve(real_root)
    trials = optuna.load_study(study_name=study.experiment("smoke"),
                               storage=open_optuna_storage(workspace.optuna_storage)).trials
    finished = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) + sum(t.state == optuna.trial.TrialState.PRUNED for t in trials) == study.search.trials
    runs = Tracker(workspace).trial_runs(study.experiment("smoke"))
    for trial in finished:  # one run per seed, and Optuna's value is their mean
        mine = runs[runs["tags.workbench.optuna_trial"] == str(trial.number)]
        assert sorted(mine["tags.workbench.seed"]) == ["0", "1"]
        assert trial.value == pytest.approx(mine["metrics.eval/avg"].mean())
        assert {float(v) for v in mine["params.train.lr"]} == {trial.params["train.lr"]}
    points = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(points)) == len(points), "two workers drew the same point"

    report = runner.invoke(main, [*ws, "report", str(STUDY), "--profile", "smoke", "--out", str(tmp_path)])
    assert report.exit_code == 0, report.output
    assert "**Best: trial " in report.output and "## Parameter importances" in report.output
    assert "## Cost" in report.output and (runs["metrics.cost/samples_seen"] > 0).all()
    assert "train.weight_decay" in report.output.split("## Parameter importances")[1]
    out = tmp_path / "baseline_search"
    ranked = pd.read_csv(out / "baseline_search-smoke.csv")
    assert list(ranked.columns[:6]) == ["trial", "train.lr", "train.weight_decay", "mean", "std", "seeds"]
    assert ranked["mean"].is_monotonic_decreasing and set(ranked["trial"]) >= {t.number for t in finished}
    with Image.open(out / "baseline_search-smoke.png") as image:
        assert image.format == "PNG"
    tex = (out / "baseline_search-smoke.tex").read_text()
    LatexWalker(tex, tolerant_parsing=False).get_latex_nodes()  # raises on unbalanced braces or environments
    assert r"\toprule" in tex and "Best: trial" in tex
    assert "<h2>Parameter importances</h2>" in (out / "baseline_search-smoke.html").read_text()
