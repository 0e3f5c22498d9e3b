"""MLflow bookkeeping works beside an active fluent run, flattens params, ends dead runs as KILLED, and
leaves remote stores alone."""

import subprocess
import sys

import mlflow
import pytest

from workbench.tracking.mlflow_store import Tracker, flatten
from workbench.tracking.stores import ensure_sqlite_store, sqlite_file
from workbench.workspace import Workspace


def test_flatten_nested_config():
    assert flatten({"train": {"lr": 1e-3, "betas": [0.9, 0.95]}, "seed": 1}) == \
        {"train.lr": 1e-3, "train.betas": [0.9, 0.95], "seed": 1}


def test_child_run_while_a_fluent_parent_run_is_active(tmp_path):
    ws = Workspace.resolve(tmp_path).ensure()
    mlflow.set_tracking_uri(ws.mlflow_uri)
    tracker = Tracker(ws)
    experiment = tracker.experiment_id("nested")
    try:
        with mlflow.start_run(experiment_id=experiment) as active:
            child = tracker.start_run("nested", "child", {"workbench.kind": "trial"}, parent_id=active.info.run_id)
            tracker.log_params(child, {"a": 1})
            tracker.log_metrics(child, {"m": 0.5}, step=3)
            tracker.end_run(child)
            assert mlflow.active_run().info.run_id == active.info.run_id  # the caller's run is untouched
    finally:
        mlflow.set_tracking_uri(None)
    run = tracker.client.get_run(child)
    assert run.data.tags["mlflow.parentRunId"] == active.info.run_id
    assert run.info.status == "FINISHED" and run.data.params == {"a": "1"}


def test_runs_of_dead_processes_are_marked_killed(tmp_path):
    ws = Workspace.resolve(tmp_path).ensure()
    tracker = Tracker(ws)
    alive = tracker.start_run("dead", "mine", {})
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip()
    dead = tracker.start_run("dead", "orphan", {"workbench.pid": dead_pid})
    assert tracker.mark_dead_runs_killed("dead") == [dead]
    assert tracker.run_status(dead) == "KILLED" and tracker.run_status(alive) == "RUNNING"


def test_remote_and_in_memory_stores_are_left_alone(tmp_path):
    assert sqlite_file("http://127.0.0.1:5000") is None
    assert sqlite_file("postgresql://user@db/optuna") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file(f"sqlite:///{tmp_path}/o.db?timeout=5") == tmp_path / "o.db"
    ensure_sqlite_store("postgresql://user@db/optuna", build=lambda url: pytest.fail("built a remote store"))


def test_a_dead_unreaped_process_counts_as_dead():
    """A killed study's workers become zombies where nothing reaps them (a container's init); their trials
    must still be recovered."""
    import os
    import socket
    import time

    from workbench.tracking.mlflow_store import process_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(0.1)
    deadline = time.time() + 20
    while process_alive(socket.gethostname(), str(child.pid)) and time.time() < deadline:
        time.sleep(0.1)  # exited but not yet waited for: a zombie
    try:
        assert not process_alive(socket.gethostname(), str(child.pid))
    finally:
        child.wait()
    assert process_alive(socket.gethostname(), str(os.getpid()))


def test_metric_histories_come_back_per_run_in_step_order(tmp_path):
    tracker = Tracker(Workspace.resolve(tmp_path).ensure())
    runs = [tracker.start_run("curves", f"trial {i}", {"workbench.kind": "trial"}) for i in range(2)]
    for step in (64, 0, 128):  # logged out of order, as a resumed run replays its history
        tracker.log_metrics(runs[0], {"train/loss": 1.0 / (step + 1)}, step)
    tracker.log_metrics(runs[1], {"train/loss": 0.5}, 0)
    history = tracker.metric_history(runs, "train/loss")
    assert history[history.run_id == runs[0]].step.tolist() == [0, 64, 128]
    assert history[history.run_id == runs[1]].value.tolist() == [0.5]
    assert tracker.metric_history(runs, "eval/avg").empty
