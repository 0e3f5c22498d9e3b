"""`workbench study worker` on the servers a group shares: Optuna in PostgreSQL, MLflow behind `workbench
server` (its runs in PostgreSQL too); three workers, one killed mid-trial."""

import os
import signal
import subprocess
import sys
import time

import optuna
from mlflow import MlflowClient
from optuna.trial import TrialState

from workbench.tracking.stores import sqlalchemy_url

EXPERIMENT = "shapes-test/smoke"


def test_three_workers_run_each_point_once_and_a_killed_workers_point_again(shapes_ws, tmp_path, study_writer,
                                                                           postgres, mlflow_server):
    """Each point finishes once in Optuna and in MLflow, the killed worker's point on another worker; then
    `workbench report` reads the table back from the servers."""
    study = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [1.0e-3, 2.0e-3, 3.0e-3]}")
    study.write_text(study.read_text().replace("train.steps: 6", "train.steps: 40\n  train.threads: 1"))
    storage = postgres.database()
    env = {**os.environ, "WORKBENCH_HOME": str(shapes_ws.root), "WORKBENCH_OPTUNA_STORAGE": storage,
           "WORKBENCH_MLFLOW_URI": mlflow_server}
    workers = [subprocess.Popen([sys.executable, "-m", "workbench.cli", "study", "worker", str(study),
                                 "--heartbeat", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for _ in range(3)]
    victim = workers[0]
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not _running_with_run(storage, victim.pid):
            time.sleep(0.1)
        assert _running_with_run(storage, victim.pid), "the first worker never started a trial"
        os.kill(victim.pid, signal.SIGKILL)
        for worker in workers[1:]:
            worker.wait(timeout=300)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
    logs = "\n".join(f"worker {i} (exit {w.returncode}):\n" + "\n".join(w.stdout.read().splitlines()[-30:])
                     for i, w in enumerate(workers[1:], 1))
    assert all(w.returncode == 0 for w in workers[1:]), logs

    trials = optuna.load_study(study_name=EXPERIMENT, storage=sqlalchemy_url(storage)).get_trials()
    complete = [t.user_attrs["point_id"] for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == len(set(complete)) == 6, logs
    (killed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert killed.user_attrs["point_id"] in complete  # retried by another worker, finished once
    status = subprocess.run([sys.executable, "-m", "workbench.cli", "study", "status", str(study)], env=env,
                            capture_output=True, text=True, check=True).stdout
    assert f"#{killed.number:<4} FAIL" in status and "its worker stopped beating" in status, status
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]

    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    trial_runs = [r for r in runs if r.data.tags["workbench.kind"] == "trial"]
    finished = [r.data.tags["workbench.point_id"] for r in trial_runs if r.info.status == "FINISHED"]
    assert sorted(finished) == sorted(complete)
    (dead,) = [r for r in trial_runs if r.info.status != "FINISHED"]
    assert dead.info.status == "KILLED" and dead.info.run_id == killed.user_attrs["mlflow_run_id"]
    assert "stopped beating" in dead.data.tags["workbench.failure"]
    (parent,) = [r for r in runs if r.data.tags["workbench.kind"] == "study"]
    assert parent.info.status == "FINISHED"
    assert {r.data.tags.get("mlflow.parentRunId") for r in trial_runs} == {parent.info.run_id}
    assert "eval/eval.json" in {a.path for a in client.list_artifacts(trial_runs[0].info.run_id, "eval")}

    report = subprocess.run([sys.executable, "-m", "workbench.cli", "report", str(study), "--out",
                             str(tmp_path / "reports")], env=env, capture_output=True, text=True)  # from the servers
    assert report.returncode == 0, report.stderr
    assert "| 0.001 |" in report.stdout and "| 0.003 |" in report.stdout, report.stdout
    assert (tmp_path / "reports" / "shapes-test" / "shapes-test-smoke.csv").exists()


def _running_with_run(storage: str, pid: int) -> bool:
    """Whether worker ``pid`` is mid-trial, its MLflow run started."""
    try:
        trials = optuna.load_study(study_name=EXPERIMENT, storage=sqlalchemy_url(storage)).get_trials(
            states=(TrialState.RUNNING,))
    except KeyError:  # the study is not created yet
        return False
    return any(t.user_attrs.get("pid") == str(pid) and "mlflow_run_id" in t.user_attrs for t in trials)

