"""Exported stores: a stand-alone copy of some experiments that moves with the repository."""

import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from workbench.tracking.export import ARTIFACTS, SOURCE_TAG, STORE, export_experiments, ui_command
from workbench.tracking.mlflow_store import Tracker
from workbench.workspace import Workspace

EXAMPLE = Path(__file__).parents[2] / "mlruns.example"


@pytest.fixture
def source(tmp_path):
    """A workspace store: a study parent with a child trial (metric history, a small and a checkpoint
    artifact) and an experiment that is not exported."""
    tracker = Tracker(Workspace.resolve(tmp_path / "ws").ensure())
    parent = tracker.start_run("s/micro", "study", {"workbench.kind": "study"})
    child = tracker.start_run("s/micro", "trial", {"workbench.point_id": "p1"}, parent_id=parent)
    tracker.log_params(child, {"train.lr": 0.001})
    for step, value in enumerate([0.1, 0.2, 0.3]):
        tracker.log_metrics(child, {"eval/avg": value}, step)
    files = tmp_path / "files"
    files.mkdir()
    (files / "summary.json").write_text("{}")
    (files / "model.pt").write_bytes(b"weights")
    tracker.log_file(child, files / "summary.json", "train")
    tracker.log_file(child, files / "model.pt", "train")
    tracker.end_run(child, "FINISHED")
    tracker.end_run(parent, "FINISHED")
    other = tracker.start_run("other/micro", "x", {})
    tracker.end_run(other, "FAILED")
    return tracker, parent, child


def test_export_copies_runs_histories_and_small_artifacts(source, tmp_path):
    tracker, parent, child = source
    out = tmp_path / "example"
    assert export_experiments(tracker.ws.mlflow_uri, ["s/micro"], out) == {"s/micro": 2}
    client = MlflowClient(tracking_uri=f"sqlite:///{out / STORE}")
    assert client.get_experiment_by_name("other/micro") is None
    runs = {r.data.tags[SOURCE_TAG]: r for r in client.search_runs(
        [client.get_experiment_by_name("s/micro").experiment_id])}
    assert set(runs) == {parent, child}
    copy = runs[child]
    assert copy.data.tags["mlflow.parentRunId"] == runs[parent].info.run_id  # the copied parent
    assert copy.data.params == {"train.lr": "0.001"} and copy.info.status == "FINISHED"
    history = client.get_metric_history(copy.info.run_id, "eval/avg")
    assert [(m.step, m.value) for m in history] == [(0, 0.1), (1, 0.2), (2, 0.3)]
    assert copy.info.artifact_uri == f"mlflow-artifacts:/s/micro/{copy.info.run_id}/artifacts"
    copied = out / ARTIFACTS / "s" / "micro" / copy.info.run_id / "artifacts" / "train"
    assert sorted(p.name for p in copied.iterdir()) == ["summary.json"]  # the checkpoint stays behind
    with pytest.raises(FileExistsError):
        export_experiments(tracker.ws.mlflow_uri, ["s/micro"], out)
    with pytest.raises(LookupError, match="no experiment 'missing'"):
        export_experiments(tracker.ws.mlflow_uri, ["missing"], tmp_path / "other")


def test_the_ui_serves_an_exported_folder_from_wherever_it_lies(tmp_path):
    command = ui_command(tmp_path / "example", 5001, "python")
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'example' / STORE}"
    assert command[command.index("--artifacts-destination") + 1] == str(tmp_path / "example" / ARTIFACTS)
    assert command[command.index("--host") + 1] == "127.0.0.1"


def test_the_shipped_example_holds_two_studies_runs_with_their_artifacts(tmp_path):
    shutil.copy(EXAMPLE / STORE, tmp_path / STORE)  # opened from a copy: the repository's file stays as it is
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / STORE}")
    for name, trials in (("quickstart/micro", 4), ("baseline_clip/micro", 12)):
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None, name
        runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
        finished = [r for r in runs if "eval/avg" in r.data.metrics]
        assert len(finished) >= trials, name
        for run in finished:
            artifacts = EXAMPLE / ARTIFACTS / name / run.info.run_id / "artifacts"
            assert (artifacts / "eval" / "eval.json").is_file() and (artifacts / "config" / "resolved.yaml").is_file()
    assert sum(p.stat().st_size for p in EXAMPLE.rglob("*") if p.is_file()) < 30 * 2**20
