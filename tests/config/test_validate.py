"""`study validate` beyond the bad files: the trial cap and raising it, names that exist only in a
workspace, suites inside it, and task metrics as objectives."""

import json
import shutil
import time
from pathlib import Path

from click.testing import CliRunner

from workbench.cli import main
from workbench.config.files import DEFAULT_SUITE

HUGE = Path(__file__).parent / "bad_studies" / "45_huge_seeds.yaml"


def validate(ws: Path, study: Path):
    return CliRunner().invoke(main, ["--workspace", str(ws), "study", "validate", str(study)])


def test_a_huge_grid_is_refused_at_once_and_the_cap_can_be_raised(tmp_path):
    started = time.perf_counter()
    result = validate(tmp_path / "ws", HUGE)
    assert time.perf_counter() - started < 5  # expanding 10^8 trials would take hours
    assert result.exit_code == 2
    assert "100,000,000 trials" in result.stderr and "cap of 1,000" in result.stderr
    assert "max_trials" in result.stderr

    study = tmp_path / "many.yaml"
    study.write_text("study: many\nseeds: 1500\n")
    refused = validate(tmp_path / "ws", study)
    assert refused.exit_code == 2 and "1,500 trials" in refused.stderr
    study.write_text("study: many\nseeds: 1500\nmax_trials: 2000\n")
    raised = validate(tmp_path / "ws", study)
    assert raised.exit_code == 0, raised.output
    assert "(1500 grid trials)" in raised.output
    assert not (tmp_path / "ws").exists()


def test_an_imported_dataset_validates_and_nothing_is_created(tmp_path):
    ws = tmp_path / "ws"
    study = tmp_path / "mine.yaml"
    study.write_text("study: mine\nset: {data.train: [mydata]}\n")
    assert "unknown dataset 'mydata'" in validate(ws, study).stderr
    (ws / "data" / "mydata").mkdir(parents=True)
    (ws / "data" / "mydata" / "manifest.json").write_text(json.dumps({"name": "mydata"}))
    result = validate(ws, study)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in ws.iterdir()) == ["data"]  # validation read the workspace, wrote nothing


def test_a_suite_in_the_workspace_and_a_task_metric_objective_validate(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    suite = shutil.copy(DEFAULT_SUITE, ws / "suite.yaml")
    study = tmp_path / "suite.yaml"
    study.write_text(f"study: s\nset: {{eval.suite: {suite}}}\nobjective: {{metric: ret_tuxpaint/r5}}\n")
    assert validate(ws, study).exit_code == 0

    outside = shutil.copy(DEFAULT_SUITE, tmp_path / "elsewhere.yaml")
    study.write_text(f"study: s\nset: {{eval.suite: {outside}}}\n")
    result = validate(ws, study)
    assert result.exit_code == 2 and "set.eval.suite" in result.stderr and "outside the project" in result.stderr
    run = CliRunner().invoke(main, ["--workspace", str(ws), "study", "run", str(study)])
    assert run.exit_code == 2 and "outside the project" in run.stderr  # `run` checks what `validate` does
    assert sorted(p.name for p in ws.iterdir()) == ["suite.yaml"]  # refused before any store was made
