"""Optuna orchestration with MLflow tracking, end to end on the synthetic shapes set (smoke profile)."""

import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import optuna
from mlflow import MlflowClient

from workbench.config.study import load_study
from workbench.study.orchestrate import enqueue_pending, open_optuna_study, run_study
from workbench.study.status import render_status
from workbench.study.trials import expand_grid

EXPERIMENT = "shapes-test/smoke"


def runs_of(ws, kind: str | None = None):
    client = MlflowClient(ws.mlflow_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r for r in runs if kind is None or r.data.tags.get("workbench.kind") == kind]


def test_grid_runs_every_point_once_and_logs_to_mlflow(shapes_ws, shapes_study):
    summary = run_study(shapes_study, shapes_ws, progress=False)
    assert (summary.total, summary.ran, summary.failed) == (4, 4, [])

    trials = runs_of(shapes_ws, "trial")
    assert len(trials) == 4
    assert all(r.info.status == "FINISHED" for r in trials)
    parents = runs_of(shapes_ws, "study")
    assert len(parents) == 1
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parents[0].info.run_id}
    run = trials[0]
    assert run.data.params["train.steps"] == "6" and "model.name" in run.data.params
    assert {"workbench.axis.lr", "workbench.seed", "workbench.git_commit", "workbench.data.shapes",
            "workbench.stage.train", "workbench.stage.eval"} <= set(run.data.tags)
    assert f"torch {version('torch')}," in run.data.tags["workbench.packages"]  # what computed its numbers
    history = MlflowClient(shapes_ws.mlflow_uri).get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == sorted(m.step for m in history) and len(history) >= 3
    assert {"eval/avg", "chance/avg", "stderr/avg"} <= set(run.data.metrics)
    artifacts = {a.path for a in MlflowClient(shapes_ws.mlflow_uri).list_artifacts(run.info.run_id)}
    assert {"config", "eval", "train"} <= artifacts


def test_rerun_reuses_every_trial_and_adds_no_runs(shapes_ws, shapes_study):
    run_study(shapes_study, shapes_ws, progress=False)
    started = time.perf_counter()
    summary = run_study(shapes_study, shapes_ws, progress=False)
    assert (summary.reused, summary.ran) == (4, 0)
    assert time.perf_counter() - started < 30
    assert len(runs_of(shapes_ws, "trial")) == 4


def test_a_training_code_version_bump_runs_every_point_again(shapes_ws, shapes_study, monkeypatch):
    from dataclasses import replace

    from workbench.train import stage

    run_study(shapes_study, shapes_ws, progress=False)
    monkeypatch.setattr(stage, "TRAIN", replace(stage.TRAIN, version=stage.TRAIN.version + 1))
    summary = run_study(shapes_study, shapes_ws, progress=False)
    assert (summary.reused, summary.ran) == (0, 4)


def test_a_changed_recipe_runs_its_points_again_and_reports_only_them(shapes_ws, shapes_study):
    run_study(shapes_study, shapes_ws, progress=False)
    shapes_study.write_text(shapes_study.read_text().replace("train.steps: 6", "train.steps: 5"))
    summary = run_study(shapes_study, shapes_ws, progress=False)
    assert (summary.reused, summary.ran) == (0, 4)
    from workbench.report.build import study_report

    from workbench.config.study import load_study
    from workbench.study.trials import point_ids

    text, _ = study_report(shapes_study, shapes_ws, points=point_ids(load_study(shapes_study), shapes_study))
    assert "4 runs;" in text


def test_an_added_axis_value_and_seed_run_only_the_new_points_and_status_lists_current_ones(shapes_ws, tmp_path, study_writer):
    study = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [1.0e-3, 2.0e-3]}", seeds=1)
    assert run_study(study, shapes_ws, progress=False).ran == 2
    study = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [1.0e-3, 2.0e-3, 3.0e-3]}", seeds=2)
    summary = run_study(study, shapes_ws, progress=False)
    assert (summary.reused, summary.ran, summary.failed) == (2, 4, [])
    study = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [1.0e-3]}", seeds=1)
    status = render_status(study, shapes_ws)
    assert "grid: 1/1 points complete" in status and "5 trials of points no longer in the study file" in status
    assert len([line for line in status.splitlines() if line.startswith("  #")]) == 1
    assert len([line for line in render_status(study, shapes_ws, show_all=True).splitlines()
                if line.startswith("  #")]) == 6


def test_waiting_trials_of_an_edited_study_are_dropped_not_run_as_its_new_points(shapes_ws, tmp_path, study_writer):
    """A run killed before its queue emptied leaves waiting trials. If the file is then edited (same axis,
    new values: the same grid coordinates), those trials must not run as the new points, twice over."""
    old = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [1.0e-3, 2.0e-3]}", seeds=1)
    enqueue_pending(open_optuna_study(load_study(old), "smoke", shapes_ws), expand_grid(load_study(old), old, "smoke"))
    new = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [3.0e-3, 4.0e-3]}", seeds=1)
    assert run_study(new, shapes_ws, progress=False).ran == 2
    points = [r.data.tags["workbench.point_id"] for r in runs_of(shapes_ws, "trial")]
    assert len(points) == len(set(points)) == 2
    trials = optuna.load_study(study_name=EXPERIMENT, storage=shapes_ws.optuna_storage).get_trials()
    dropped = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(dropped) == 2 and all("superseded" in t.user_attrs["fail_reason"] for t in dropped)
    assert run_study(new, shapes_ws, progress=False).ran == 0


def test_waiting_trials_of_a_reordered_axis_are_requeued_at_their_new_coordinates(shapes_ws, tmp_path, study_writer):
    """Reordering an axis's values keeps every point but moves it: a waiting trial kept from before would
    run the point now at its old coordinates, under the other point's name."""
    old = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [1.0e-3, 2.0e-3]}", seeds=1)
    opt_study = open_optuna_study(load_study(old), "smoke", shapes_ws)
    enqueue_pending(opt_study, expand_grid(load_study(old), old, "smoke"))
    new = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [2.0e-3, 1.0e-3]}", seeds=1)
    specs = expand_grid(load_study(new), new, "smoke")
    assert enqueue_pending(opt_study, specs) == (0, 2)
    where = {spec.point_id: spec.axis_indices["lr"] for spec in specs}
    waiting = opt_study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert sorted(where[t.user_attrs["point_id"]] for t in waiting) == [0, 1]
    assert all(t.system_attrs["fixed_params"]["grid.lr"] == where[t.user_attrs["point_id"]] for t in waiting)


def test_lost_optuna_db_is_rebuilt_from_the_stage_cache(shapes_ws, shapes_study):
    run_study(shapes_study, shapes_ws, progress=False)
    Path(shapes_ws.optuna_storage.removeprefix("sqlite:///")).unlink()
    summary = run_study(shapes_study, shapes_ws, progress=False)
    assert summary.ran == 4
    latest = sorted(runs_of(shapes_ws, "trial"), key=lambda r: r.info.start_time)[-4:]
    assert all(r.data.tags["workbench.cache_hit"] == "True" for r in latest)


def test_failed_trial_is_recorded_and_the_others_go_on(shapes_ws, tmp_path, study_writer):
    study = study_writer(tmp_path / "s.yaml",
                        "  lr: {key: train.lr, values: [1.0e-3, 1.0e+12]}",
                        extra="", seeds=1)
    text = study.read_text().replace("train.eval_every: 3", "train.eval_every: 3\n  train.grad_clip: null\n"
                                     "  train.warmup_steps: 0")
    study.write_text(text)
    summary = run_study(study, shapes_ws, progress=False)
    assert summary.ran == 2 and len(summary.failed) == 1
    assert "TrainingDiverged" in summary.failed[0]
    statuses = sorted(r.info.status for r in runs_of(shapes_ws, "trial"))
    assert statuses == ["FAILED", "FINISHED"]
    failed = [r for r in runs_of(shapes_ws, "trial") if r.info.status == "FAILED"][0]
    assert "loss is nan" in failed.data.tags["workbench.failure"]


def test_two_workers_never_run_a_point_twice(shapes_ws, tmp_path, study_writer):
    study = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [1.0e-3, 2.0e-3, 3.0e-3]}")
    summary = run_study(study, shapes_ws, workers=2, progress=False)
    assert (summary.ran, summary.failed) == (6, [])
    points = [r.data.tags["workbench.point_id"] for r in runs_of(shapes_ws, "trial")]
    assert len(points) == len(set(points)) == 6
    trials = optuna.load_study(study_name=EXPERIMENT, storage=shapes_ws.optuna_storage).get_trials()
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 6


def test_kill_minus_nine_then_rerun_finishes_only_what_was_left(shapes_ws, tmp_path, study_writer):
    study = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [1.0e-3, 3.0e-3]}", seeds=1)
    study.write_text(study.read_text().replace("train.steps: 6", "train.steps: 160\n  train.checkpoint_every: 20")
                     .replace("train.eval_every: 3", "train.eval_every: 80"))
    env = {**os.environ, "WORKBENCH_HOME": str(shapes_ws.root)}
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "study", "run", str(study), "--no-report",
                             "--workers", "1"],  # one trial at a time: the second is mid-training at the kill
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # kill once the first trial is done (logged, not just trained) and the second has checkpointed
        deadline = time.time() + 180
        while time.time() < deadline and not (_finished_trainings(shapes_ws) == 1 and _checkpoints(shapes_ws)
                                              and _finished_trial_runs(shapes_ws) == 1):
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _finished_trainings(shapes_ws) == 1 and _checkpoints(shapes_ws), "the study never got going"
    assert any(r.info.status == "RUNNING" for r in runs_of(shapes_ws))

    summary = run_study(study, shapes_ws, progress=False)
    assert (summary.reused, summary.ran, summary.recovered, summary.failed) == (1, 1, 1, [])
    runs = runs_of(shapes_ws)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    trial_runs = [r for r in runs if r.data.tags["workbench.kind"] == "trial"]
    assert sorted(r.info.status for r in trial_runs) == ["FINISHED", "FINISHED", "KILLED"]
    assert [r.info.status for r in runs if r.data.tags["workbench.kind"] == "study"].count("KILLED") == 1
    resumed = [json.loads(p.read_text())["resumed_from_step"] for p in shapes_ws.cache_dir.glob("train/*/summary.json")]
    assert sorted(resumed)[-1] >= 20, "the interrupted training resumed from its checkpoint"


def _finished_trial_runs(ws) -> int:
    if MlflowClient(ws.mlflow_uri).get_experiment_by_name(EXPERIMENT) is None:
        return 0
    return sum(r.info.status == "FINISHED" for r in runs_of(ws, "trial"))


def _finished_trainings(ws) -> int:
    return len(list(ws.cache_dir.glob("train/*/model.pt")))


def _checkpoints(ws) -> bool:
    return any(ws.cache_dir.glob("train/*.partial/checkpoint.pt"))


def test_a_trials_numbers_do_not_depend_on_how_many_workers_ran_it(shapes_root, shapes_ws, shapes_study, tmp_path):
    """One worker in this process (torch at its default thread count) and two spawned workers give the
    same trials bitwise: each trial pins train.threads itself."""
    import torch

    from workbench.workspace import Workspace

    other = Workspace.resolve(tmp_path / "other").ensure()
    (other.data_dir / "shapes").symlink_to(shapes_root / "data" / "shapes", target_is_directory=True)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_study(shapes_study, shapes_ws, workers=1, progress=False)
    finally:
        torch.set_num_threads(before)
    run_study(shapes_study, other, workers=2, progress=False)

    def results(ws):
        return {(r.data.tags["workbench.point_id"], r.data.tags["workbench.stage.train"]):
                {k: v for k, v in r.data.metrics.items() if k.startswith("eval/")} for r in runs_of(ws, "trial")}

    alone, side_by_side = results(shapes_ws), results(other)
    assert len(alone) == 4 and alone == side_by_side


def test_the_commit_tag_marks_uncommitted_changes(tmp_path):
    import subprocess

    from workbench.study.orchestrate import _git_commit

    read = _git_commit.__wrapped__  # uncached: the checkout changes under the test
    assert read(tmp_path) == "unknown"
    git = lambda *args: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],  # noqa: E731
                                       cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-qm", "one")
    head = git("rev-parse", "HEAD")
    (tmp_path / "notes.txt").write_text("untracked files are not the code\n")
    assert read(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert read(tmp_path) == f"{head}+dirty"
