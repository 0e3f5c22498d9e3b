"""MLflow bookkeeping: an experiment per study, a parent run per invocation, a child run per trial.

Everything goes through ``MlflowClient`` with explicit run ids rather than the fluent "active run"
state, so logging works the same inside worker processes and when the caller already has a run open.
Runs record the host and process that own them; a later invocation marks runs whose process died as
KILLED, so a ``kill -9`` leaves no run RUNNING forever. The workspace's sqlite store is created whole
(``workbench.tracking.stores``); a half-migrated one left by an older workbench is rebuilt if it holds
nothing, and refused with the command to run if it holds runs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import mlflow
import pandas as pd
from alembic.script import ScriptDirectory
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.store.db.utils import _get_alembic_config
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.utils.validation import MAX_PARAMS_TAGS_PER_BATCH

from workbench.processes import start_group
from workbench.tracking.stores import StoreError, ensure_sqlite_store, sqlalchemy_url
from workbench.workspace import Workspace

TAG_PREFIX = "workbench."


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1e-3}} → {"train.lr": 1e-3}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _owner_tags() -> dict[str, str]:
    return {f"{TAG_PREFIX}host": socket.gethostname(), f"{TAG_PREFIX}pid": str(os.getpid())}


def process_alive(host: str | None, pid: str | None) -> bool:
    """True unless the owner is a process on this host that no longer exists."""
    if host != socket.gethostname() or not pid:
        return True  # another machine's run: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    """A killed worker whose new parent (a container's init) never reaps it still answers ``kill -0``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].startswith("Z")


@functools.cache
def _schema_revisions() -> tuple[str, frozenset[str]]:
    """This MLflow's head schema revision and every revision it knows (its alembic migrations)."""
    script = ScriptDirectory.from_config(_get_alembic_config(""))
    return script.get_current_head(), frozenset(r.revision for r in script.walk_revisions())


def _inspect_store(path: Path) -> tuple[str | None, bool]:
    """(schema revision, holds data) of an MLflow sqlite file, read with the standard library.

    Data is anything a user made: a run, an experiment besides the built-in Default (id 0), a trace
    or a registered model. Opening in read-write mode lets sqlite roll back a killed writer's journal.
    """
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=60)) as db:
            tables = {name for (name,) in db.execute("select name from sqlite_master where type = 'table'")}
            revision = (db.execute("select version_num from alembic_version").fetchone() or [None])[0] \
                if "alembic_version" in tables else None
            queries = {"runs": "select 1 from runs limit 1",
                       "experiments": "select 1 from experiments where experiment_id != 0 limit 1",
                       "trace_info": "select 1 from trace_info limit 1",
                       "registered_models": "select 1 from registered_models limit 1"}
            has_data = any(db.execute(query).fetchone() for table, query in queries.items() if table in tables)
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path}: not a readable MLflow sqlite store ({error}); it is kept as it is: "
                         f"move it away to start a new store, or point --mlflow-uri elsewhere") from error
    return revision, has_data


def _mlflow_store_needs_build(path: Path) -> bool:
    """True if the store is missing, or half-made and empty; raises if it holds data at another schema."""
    if not path.exists():
        return True
    revision, has_data = _inspect_store(path)
    head, known = _schema_revisions()
    if revision == head:
        return False
    if not has_data:
        return True  # a creation that died half-way: nothing to lose, rebuild it
    if revision not in known:
        raise StoreError(f"{path}: this MLflow store has schema {revision}, which MLflow {mlflow.__version__} "
                         f"does not know (made by a newer MLflow?); it holds runs, so it is kept: upgrade "
                         f"MLflow (pip install -U mlflow) or point --mlflow-uri at another store")
    raise StoreError(f"{path}: this MLflow store has schema {revision}, MLflow {mlflow.__version__} needs "
                     f"{head}; it holds runs, so it is kept as it is. Back it up, then upgrade it: "
                     f"cp {path} {path}.bak && mlflow db upgrade sqlite:///{path}")


def ensure_mlflow_store(ws: Workspace) -> None:
    """Create the workspace's sqlite MLflow store whole (or repair a half-made, empty one) before use."""
    def build(url: str) -> None:
        store = SqlAlchemyStore(url, ws.artifacts_dir.as_uri())  # full schema plus the Default experiment
        store.engine.dispose()

    ensure_sqlite_store(ws.mlflow_uri, build, _mlflow_store_needs_build)


class Tracker:
    def __init__(self, ws: Workspace):
        self.ws = ws
        ensure_mlflow_store(ws)
        self.client = MlflowClient(tracking_uri=sqlalchemy_url(ws.mlflow_uri))

    def experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        served = self.ws.mlflow_uri.startswith(("http://", "https://"))  # a server keeps the artifacts
        location = None if served else (self.ws.artifacts_dir / name).as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # created concurrently by another worker
            return self.client.get_experiment_by_name(name).experiment_id

    def start_run(self, experiment: str, name: str, tags: dict[str, Any], parent_id: str | None = None) -> str:
        all_tags = {**_owner_tags(), **{k: str(v) for k, v in tags.items()}}
        if parent_id:
            all_tags["mlflow.parentRunId"] = parent_id
        return self.client.create_run(self.experiment_id(experiment), tags=all_tags, run_name=name).info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        items = [Param(k, json.dumps(v) if isinstance(v, (list, tuple)) else str(v)) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, params=items[i:i + MAX_PARAMS_TAGS_PER_BATCH])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, text, name)

    def log_file(self, run_id: str, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), folder)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status)

    @contextlib.contextmanager
    def tracked_run(self, experiment: str, name: str, tags: dict[str, Any]) -> Iterator[str]:
        """A run that ends FINISHED, or FAILED (KILLED on Ctrl-C) with the failure as a tag."""
        run_id = self.start_run(experiment, name, tags)
        try:
            yield run_id
        except BaseException as error:
            self.set_tags(run_id, {f"{TAG_PREFIX}failure": f"{type(error).__name__}: {error}"[:5000]})
            self.end_run(run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
            raise
        self.end_run(run_id, "FINISHED")

    def mark_dead_runs_killed(self, experiment: str) -> list[str]:
        """End as KILLED every RUNNING run of ``experiment`` whose owning process is gone."""
        experiment_obj = self.client.get_experiment_by_name(experiment)
        if experiment_obj is None:
            return []
        killed = []
        for run in self.client.search_runs([experiment_obj.experiment_id], "attributes.status = 'RUNNING'"):
            tags = run.data.tags
            if not process_alive(tags.get(f"{TAG_PREFIX}host"), tags.get(f"{TAG_PREFIX}pid")):
                self.end_dead_run(run.info.run_id, "process died (killed or crashed)")
                killed.append(run.info.run_id)
        return killed

    def end_dead_run(self, run_id: str, reason: str) -> None:
        """End a run whose process is gone as KILLED, saying why (a run already ended keeps its status)."""
        if self.run_status(run_id) == "RUNNING":
            self.client.set_tag(run_id, f"{TAG_PREFIX}failure", reason)
            self.client.set_terminated(run_id, "KILLED")

    def trial_runs(self, experiment: str) -> pd.DataFrame:
        """Finished trial runs of a study as a DataFrame (params.*, metrics.*, tags.* columns)."""
        experiment_obj = self.client.get_experiment_by_name(experiment)
        if experiment_obj is None:
            return pd.DataFrame()
        runs = self.client.search_runs(
            [experiment_obj.experiment_id],
            f"tags.`{TAG_PREFIX}kind` = 'trial' and attributes.status = 'FINISHED'",
            max_results=50000,
        )
        rows = []
        for run in runs:
            row = {"run_id": run.info.run_id, "start_time": run.info.start_time}
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
            row.update({f"params.{k}": v for k, v in run.data.params.items()})
            row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def find_runs(self, experiment: str, tags: dict[str, str], status: str = "FINISHED") -> list[str]:
        """Ids of the runs of ``experiment`` in ``status`` carrying every tag in ``tags``."""
        experiment_obj = self.client.get_experiment_by_name(experiment)
        if experiment_obj is None:
            return []
        query = " and ".join([f"tags.`{k}` = '{v}'" for k, v in tags.items()] + [f"attributes.status = '{status}'"])
        return [run.info.run_id for run in self.client.search_runs([experiment_obj.experiment_id], query)]

    def best_metric(self, experiment: str, metric: str) -> float | None:
        """The highest ``metric`` over the finished trial runs of ``experiment`` (None if there are none)."""
        runs = self.trial_runs(experiment)
        column = f"metrics.{metric}"
        if runs.empty or column not in runs:
            return None
        return float(runs[column].max())

    def run_status(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.status

    def metric_history(self, run_ids: list[str], metric: str) -> pd.DataFrame:
        """Every logged value of ``metric`` in each run (``run_id``, ``step``, ``value``), by run then step:
        a training curve against seen samples, for plots across a study's trials."""
        rows = [{"run_id": run_id, "step": m.step, "value": m.value}
                for run_id in run_ids for m in self.client.get_metric_history(run_id, metric)]
        frame = pd.DataFrame(rows, columns=["run_id", "step", "value"])
        return frame.sort_values(["run_id", "step"], kind="stable").reset_index(drop=True)


class RunReporter:
    """Streams a stage's metrics to its run: the trainers' Reporter protocol, never asking to stop."""

    def __init__(self, tracker: Tracker, run_id: str):
        self.tracker, self.run_id = tracker, run_id

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.tracker.log_metrics(self.run_id, metrics, step)

    def should_prune(self, objective: float, step: int) -> bool:
        return False


def ui_command(ws: Workspace, port: int) -> list[str]:
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", ws.mlflow_uri,
            "--default-artifact-root", ws.artifacts_dir.as_uri(), "--host", "127.0.0.1", "--port", str(port)]


def start_ui(ws: Workspace, port: int) -> subprocess.Popen:
    """Start the MLflow UI on 127.0.0.1 against the workspace's store, in a process group of its own."""
    ws.ensure()
    ensure_mlflow_store(ws)
    return start_group(ui_command(ws, port))


def start_server(ws: Workspace, host: str, port: int, backend: str | None, artifacts: Path | None, workers: int,
                 allowed_hosts: str | None) -> subprocess.Popen:
    """Start ``mlflow server`` (see ``server_command``) in a process group of its own, which
    ``processes.stop_group`` ends whole (the server forks request and job workers); on Linux it is sent
    SIGTERM if this process dies."""
    return start_group(server_command(ws, host, port, backend, artifacts, workers, allowed_hosts))


def server_command(ws: Workspace, host: str, port: int, backend: str | None, artifacts: Path | None, workers: int,
                   allowed_hosts: str | None) -> list[str]:
    """``mlflow server`` over ``backend`` (default: the workspace's store), serving the artifacts it
    receives from ``artifacts`` (default: the workspace's artifact folder)."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", sqlalchemy_url(backend or ws.mlflow_uri),
               "--artifacts-destination", (artifacts or ws.artifacts_dir).resolve().as_uri(), "--serve-artifacts",
               "--host", host, "--port", str(port), "--workers", str(workers)]
    return command + (["--allowed-hosts", allowed_hosts] if allowed_hosts else [])
