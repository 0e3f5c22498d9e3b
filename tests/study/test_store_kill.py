"""A first run killed (SIGKILL) while it creates the MLflow or Optuna store leaves a workspace that works.

Each kill is made deterministic by a kill point inside the real schema creation: the child process
SIGKILLs itself after an MLflow schema migration step, or once Optuna's tables exist but before its
version row is written. The next open happens in another process (the test's own).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from workbench.tracking.mlflow_store import Tracker, _schema_revisions
from workbench.tracking.stores import StoreError, open_optuna_storage
from workbench.workspace import MLFLOW_ENV, OPTUNA_ENV, Workspace

KILL_AT_MIGRATION = 20  # of MLflow's ~70 schema migrations

MLFLOW_CHILD = textwrap.dedent(f"""
    import os, signal, sys
    from alembic.runtime.migration import HeadMaintainer

    real_update, steps = HeadMaintainer.update_to_step, []

    def update_then_die(self, step):
        real_update(self, step)
        steps.append(step)
        if len(steps) == {KILL_AT_MIGRATION}:
            os.kill(os.getpid(), signal.SIGKILL)

    HeadMaintainer.update_to_step = update_then_die
    from workbench.tracking.mlflow_store import Tracker
    from workbench.workspace import Workspace
    Tracker(Workspace.resolve(sys.argv[1]))
""")

OPTUNA_CHILD = textwrap.dedent("""
    import os, signal, sys
    from optuna.storages._rdb.storage import _VersionManager

    _VersionManager._init_version_info_model = lambda self: os.kill(os.getpid(), signal.SIGKILL)
    from workbench.tracking.stores import open_optuna_storage
    from workbench.workspace import Workspace
    open_optuna_storage(Workspace.resolve(sys.argv[1]).optuna_storage)
""")


def run_child(code: str, root: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (MLFLOW_ENV, OPTUNA_ENV)}
    return subprocess.run([sys.executable, "-c", code, str(root)], env=env, capture_output=True, text=True,
                          timeout=120)


def revision(path: Path) -> str | None:
    with sqlite3.connect(path) as db:
        return db.execute("select version_num from alembic_version").fetchone()[0]


def log_a_run(ws: Workspace) -> str:
    tracker = Tracker(ws)
    run = tracker.start_run("after-kill", "first", {"workbench.kind": "trial"})
    tracker.log_metrics(run, {"avg": 0.5}, step=1)
    tracker.end_run(run)
    return run


@pytest.fixture(scope="module")
def killed_mlflow(tmp_path_factory) -> tuple[Workspace, Path]:
    """A workspace whose first MLflow store creation was SIGKILLed mid-migration, and a copy of what it left."""
    root = tmp_path_factory.mktemp("killed-mlflow")
    child = run_child(MLFLOW_CHILD, root)
    assert child.returncode == -signal.SIGKILL, child.stderr
    scratch = root / "mlflow.db.new"
    assert revision(scratch) not in (None, _schema_revisions()[0])  # really half-migrated
    half_made = tmp_path_factory.mktemp("half-made") / "mlflow.db"
    shutil.copy(scratch, half_made)
    return Workspace.resolve(root), half_made


def test_mlflow_store_killed_during_creation_then_opens(killed_mlflow):
    ws, _ = killed_mlflow
    store = ws.root / "mlflow.db"
    assert not store.exists()  # the kill left no store, only its scratch file
    run = log_a_run(ws)
    assert Tracker(ws).run_status(run) == "FINISHED"
    assert revision(store) == _schema_revisions()[0]
    assert not (ws.root / "mlflow.db.new").exists()


def test_half_migrated_store_is_rebuilt_while_empty_and_kept_once_it_holds_runs(killed_mlflow, tmp_path):
    """A store left half-made in place (by older workbenches, or ``mlflow`` itself) holds nothing: rebuilt.

    A store with runs at a schema other than this MLflow's is never rebuilt: the error says what to run.
    """
    _, half_made = killed_mlflow
    ws, store = Workspace.resolve(tmp_path), tmp_path / "mlflow.db"
    shutil.copy(half_made, store)
    run = log_a_run(ws)
    assert Tracker(ws).client.get_run(run).data.metrics == {"avg": 0.5}

    with sqlite3.connect(store) as db:  # the same runs, at the half-made store's schema
        db.execute("update alembic_version set version_num = ?", (revision(half_made),))
    before = store.read_bytes()
    with pytest.raises(StoreError, match=rf"holds runs.*mlflow db upgrade sqlite:///{store}"):
        Tracker(ws)
    assert store.read_bytes() == before and not (tmp_path / "mlflow.db.new").exists()


def test_optuna_store_killed_during_creation_then_opens(tmp_path):
    child = run_child(OPTUNA_CHILD, tmp_path)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert not (tmp_path / "optuna.db").exists() and (tmp_path / "optuna.db.new").exists()
    storage = open_optuna_storage(Workspace.resolve(tmp_path).optuna_storage)
    study = optuna.create_study(study_name="after-kill", storage=storage)
    trial = study.ask()
    study.tell(trial, 0.5)
    reloaded = optuna.load_study(study_name="after-kill", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [t.value for t in reloaded.get_trials()] == [0.5]


CONCURRENT_CHILD = textwrap.dedent("""
    import sys, optuna
    from workbench.tracking.mlflow_store import Tracker
    from workbench.tracking.stores import open_optuna_storage
    from workbench.workspace import Workspace

    ws = Workspace.resolve(sys.argv[1])
    tracker = Tracker(ws)
    tracker.end_run(tracker.start_run("both", sys.argv[2], {}))
    study = optuna.create_study(study_name="both", storage=open_optuna_storage(ws.optuna_storage),
                                load_if_exists=True)
    study.tell(study.ask(), float(sys.argv[2]))
""")


@pytest.mark.slow
def test_two_processes_opening_a_fresh_workspace_share_one_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (MLFLOW_ENV, OPTUNA_ENV)}
    children = [subprocess.Popen([sys.executable, "-c", CONCURRENT_CHILD, str(tmp_path), str(i)], env=env,
                                 stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    for child in children:
        assert child.wait(timeout=180) == 0, child.stderr.read()
    ws = Workspace.resolve(tmp_path)
    tracker = Tracker(ws)
    runs = tracker.client.search_runs([tracker.experiment_id("both")])
    assert sorted(run.info.run_name for run in runs) == ["1", "2"]
    trials = optuna.load_study(study_name="both", storage=ws.optuna_storage).get_trials()
    assert sorted(t.value for t in trials) == [1.0, 2.0]
