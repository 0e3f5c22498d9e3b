"""A trial trained on `train.nproc` processes: torchrun launched by the trial, rank 0's history in its
MLflow run, and a trial killed with SIGKILL mid-training leaves no rank behind and resumes from its
checkpoint on the next run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from workbench.study.orchestrate import run_study

EXPERIMENT = "shapes-test/smoke"


def _ranks_alive(folder) -> list[int]:
    """Processes still training a recipe written under ``folder``: `workbench train --resolved` ranks."""
    alive = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"--resolved" in command and str(folder).encode() in b" ".join(command):
            alive.append(int(entry))
    return alive


@pytest.mark.slow
def test_two_process_trial_logs_rank_zeros_history_and_resumes_after_kill_9(shapes_ws, tmp_path, study_writer):
    study = study_writer(tmp_path / "s.yaml", "  lr: {key: train.lr, values: [2.0e-3]}", seeds=1)
    study.write_text(study.read_text().replace(
        "train.steps: 6", "train.steps: 160\n  train.checkpoint_every: 20\n  train.nproc: 2\n  train.threads: 1"))
    env = {**os.environ, "WORKBENCH_HOME": str(shapes_ws.root), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "study", "run", str(study), "--no-report"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not list(shapes_ws.cache_dir.glob("train/*.partial/checkpoint.pt")):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(shapes_ws.cache_dir.glob("train/*.partial/checkpoint.pt")), proc.stderr.read().decode()[-3000:]
    deadline = time.time() + 30
    while _ranks_alive(tmp_path) and time.time() < deadline:
        time.sleep(0.2)
    assert not _ranks_alive(tmp_path), "a rank kept training after its trial was killed"

    summary = run_study(study, shapes_ws, progress=False)
    assert (summary.ran, summary.failed, summary.recovered) == (1, [], 1)
    (trained,) = shapes_ws.cache_dir.glob("train/*/summary.json")
    assert json.loads(trained.read_text())["resumed_from_step"] >= 20
    assert json.loads((trained.parent / "recipe.json").read_text())["train"]["nproc"] == 2
    client = MlflowClient(shapes_ws.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id],
                              "tags.`workbench.kind` = 'trial' and attributes.status = 'FINISHED'")
    (run,) = runs
    losses = client.get_metric_history(run.info.run_id, "train/loss")
    assert len(losses) > 3 and max(m.step for m in losses) == 160 * 16  # rank 0's history, logged by the trial
