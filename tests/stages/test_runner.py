"""The one runner of a cached, tracked stage, and the registry of stage names."""

import importlib

import pytest
from mlflow import MlflowClient

from workbench.stages.registry import Stage, register_stage, registered
from workbench.stages.runner import run_tracked


def _run(ws, stage, builds):
    def build(out, run):
        builds.append(run.run_id)
        (out / "x.txt").write_text("built")

    def log(run, result):
        run.tracker.log_metrics(run.run_id, {"size": len((result.path / "x.txt").read_text())}, 0)

    return run_tracked(stage, "k1", ws, experiment="things", run_name="thing", tags={"workbench.kind": "thing"},
                       params={"a": {"b": 1}}, build=build, log=log)


def test_a_stage_builds_once_logs_once_and_then_is_a_hit(shapes_ws):
    stage, builds = Stage("thing", 1), []
    result, run_id = _run(shapes_ws, stage, builds)
    assert not result.hit and builds == [run_id] and (result.path / "x.txt").read_text() == "built"
    run = MlflowClient(shapes_ws.mlflow_uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"a.b": "1"}
    assert run.data.tags["workbench.stage.thing"] == "k1" and run.data.tags["workbench.cache_hit"] == "False"
    assert run.data.metrics["size"] == 5
    again, again_id = _run(shapes_ws, stage, builds)
    assert again.hit and again_id is None and len(builds) == 1


def test_a_failed_build_ends_its_run_failed_and_commits_nothing(shapes_ws):
    def build(out, run):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_tracked(Stage("broken", 1), "k2", shapes_ws, experiment="things", run_name="broken", tags={}, params={},
                    build=build, log=lambda run, result: None)
    runs = MlflowClient(shapes_ws.mlflow_uri).search_runs(
        [MlflowClient(shapes_ws.mlflow_uri).get_experiment_by_name("things").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"] and "boom" in runs[0].data.tags["workbench.failure"]
    assert not (shapes_ws.cache_dir / "broken" / "k2").exists()


def test_every_pipeline_stage_is_registered_once():
    for module in ("captioners.pipeline", "evaluate.stage", "reinforce.stage", "teachers.lit", "train.stage"):
        importlib.import_module(f"workbench.{module}")  # importing a stage's module registers it

    names = set(registered())
    assert {"teacher", "features", "captioner", "captions", "caption-quality", "reinforce", "train", "eval"} <= names
    with pytest.raises(ValueError, match="registered twice"):
        register_stage("teacher", 1)
