"""Copy some experiments of a workspace's MLflow store into a small stand-alone store that can be shared.

The copy is a folder with ``mlflow.db`` (sqlite) and ``artifacts/``. Its experiments name their
artifacts ``mlflow-artifacts:/<experiment>``, which an MLflow server started with
``--artifacts-destination <folder>/artifacts`` serves: the folder can move (a clone of the repository,
another machine) and still browse (``workbench ui --mlruns FOLDER``). Runs keep their parameters, tags,
every metric's full history, times and status; their new run ids are new, so each run carries the old
one in the tag ``workbench.source_run``. Checkpoints and anything bigger than ``max_artifact_bytes`` stay
behind: the copy is for looking at results, not for resuming training.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlflow.entities import Metric, Param
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

SOURCE_TAG = "workbench.source_run"
PARENT_TAG = "mlflow.parentRunId"
STORE, ARTIFACTS = "mlflow.db", "artifacts"
SKIPPED_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")


def export_experiments(source_uri: str, names: list[str], out: Path, max_artifact_bytes: int = 1 << 20) -> dict[str, int]:
    """Copy experiments ``names`` of the store at ``source_uri`` into ``out`` (created; must not hold a
    store yet). Returns the runs copied per experiment."""
    out = out.resolve()
    if (out / STORE).exists():
        raise FileExistsError(f"{out / STORE} exists; export into a new folder (or delete it first)")
    out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{out / STORE}"
    SqlAlchemyStore(uri, "mlflow-artifacts:/default").engine.dispose()  # the schema, whole
    source, target = MlflowClient(tracking_uri=source_uri), MlflowClient(tracking_uri=uri)
    copied = {}
    for name in names:
        experiment = source.get_experiment_by_name(name)
        if experiment is None:
            raise LookupError(f"no experiment {name!r} in {source_uri}")
        target_id = target.create_experiment(name, artifact_location=f"mlflow-artifacts:/{name}")
        runs = source.search_runs([experiment.experiment_id], max_results=50_000)
        runs.sort(key=lambda run: (PARENT_TAG in run.data.tags, run.info.start_time or 0))  # parents first
        new_ids: dict[str, str] = {}
        for run in runs:
            new_ids[run.info.run_id] = _copy_run(source, target, target_id, run, new_ids)
            _copy_artifacts(run.info.artifact_uri, out / ARTIFACTS / name / new_ids[run.info.run_id] / "artifacts",
                            max_artifact_bytes)
        copied[name] = len(runs)
    with sqlite3.connect(out / STORE) as db:
        db.execute("VACUUM")  # the schema's empty pages: a quarter of a fresh store
    return copied


def _copy_run(source: MlflowClient, target: MlflowClient, experiment_id: str, run, new_ids: dict[str, str]) -> str:
    tags = {**run.data.tags, SOURCE_TAG: run.info.run_id}
    if PARENT_TAG in tags:
        tags[PARENT_TAG] = new_ids.get(tags[PARENT_TAG], tags[PARENT_TAG])
    new = target.create_run(experiment_id, start_time=run.info.start_time, tags=tags,
                            run_name=run.info.run_name).info.run_id
    params = [Param(k, v) for k, v in run.data.params.items()]
    for i in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH):
        target.log_batch(new, params=params[i:i + MAX_PARAMS_TAGS_PER_BATCH])
    metrics = [Metric(m.key, m.value, m.timestamp, m.step)
               for key in run.data.metrics for m in source.get_metric_history(run.info.run_id, key)]
    for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        target.log_batch(new, metrics=metrics[i:i + MAX_METRICS_PER_BATCH])
    target.set_terminated(new, run.info.status, end_time=run.info.end_time)
    return new


def _copy_artifacts(uri: str, destination: Path, max_bytes: int) -> None:
    """Copy a run's local artifacts (a file: URI) but checkpoints and files over ``max_bytes``."""
    if urlparse(uri).scheme != "file":
        raise ValueError(f"artifacts at {uri}: only a local store's artifacts (file:) can be exported")
    root = Path(url2pathname(urlparse(uri).path))
    for path in sorted(root.rglob("*")) if root.exists() else []:
        if path.is_file() and not path.name.endswith(SKIPPED_SUFFIXES) and path.stat().st_size <= max_bytes:
            (destination / path.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination / path.relative_to(root))


def ui_command(folder: Path, port: int, python: str) -> list[str]:
    """The MLflow UI over an exported folder: its store, its artifacts served from beside it."""
    folder = folder.resolve()
    return [python, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{folder / STORE}",
            "--artifacts-destination", str(folder / ARTIFACTS), "--host", "127.0.0.1", "--port", str(port)]
