"""The ``teacher`` stage: fit (or load) a zoo teacher, score it on the eval suite, log it to MLflow.

Run alone: ``workbench teacher fit lite0-minilm``. The artifact (cache/teacher/<key>/) holds everything
needed to load the teacher again — heads or model weights, ``teacher.json`` (embedding dimension,
logit scale, resolution) and its eval results — so reinforcement only ever calls ``load_teacher``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from workbench.config.overrides import ConfigError
from workbench.data.build import ensure_datasets
from workbench.evaluate.spec import load_suite
from workbench.evaluate.suite import run_suite
from workbench.models.encoder import ImageTextEncoder
from workbench.stages.cache import StageCache, StageResult
from workbench.stages.runner import TrackedRun, run_tracked
from workbench.teachers.kinds import TEACHER, kind_of
from workbench.teachers.zoo import Zoo, dump_spec, load_zoo, teacher_spec
from workbench.threads import FIT_THREADS, pinned_threads
from workbench.tracking.mlflow_store import TAG_PREFIX
from workbench.workspace import Workspace
EXPERIMENT = "teachers"
BASELINE_EXPERIMENT = "baseline_clip/micro"
"""Where the best plain micro student is looked up: a teacher must beat it to teach anything."""


@dataclass
class Teacher:
    """A fitted teacher: an ImageTextEncoder plus what distillation needs to know about it."""

    name: str
    key: str
    encoder: ImageTextEncoder
    logit_scale: float
    """The scale it was trained with (Tab. 3: not necessarily the best one for distillation)."""
    embed_dim: int

    @property
    def image_size(self) -> int:
        return self.encoder.image_size

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode_images(pixels)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self.encoder.encode_texts(texts)


@dataclass
class FittedTeacher:
    name: str
    key: str
    path: Path
    hit: bool
    info: dict
    """teacher.json: kind, embed_dim, logit_scale, image_size, fit seconds."""
    metrics: dict[str, float]
    headline: list[str]
    """The suite's headline columns (``avg`` only if that suite has one)."""

    def summary(self) -> str:
        return ", ".join(f"{column} {self.metrics[column]:.4f}" for column in self.headline) or "no headline columns"


def required_datasets(name: str, spec, ws: Workspace) -> set[str]:
    return kind_of(spec).required_datasets(name, spec, ws)


def teacher_key(name: str, spec, ws: Workspace) -> str:
    """Hash of the spec and of what it was fitted on (dataset fingerprints, the suite, the weights file)."""
    return kind_of(spec).key(name, spec, ws)


def _build(name: str, spec, key: str, ws: Workspace, out: Path, reporter, progress: bool) -> None:
    with pinned_threads(FIT_THREADS):  # a scratch teacher's training then pins its recipe's train.threads
        _fit(name, spec, key, ws, out, reporter, progress)


def _fit(name: str, spec, key: str, ws: Workspace, out: Path, reporter, progress: bool) -> None:
    started = time.perf_counter()
    fit, suite = kind_of(spec).fit(name, spec, ws, out, reporter, progress)
    (out / "spec.yaml").write_text(dump_spec(spec))
    teacher = _load_from(name, spec, out, key)
    result = run_suite(teacher.encoder, ws, load_suite(suite), progress=progress)
    (out / "eval.json").write_text(result.to_json())
    (out / "eval.txt").write_text(result.to_table())
    info = {"name": name, "kind": spec.kind, "embed_dim": teacher.embed_dim, "logit_scale": teacher.logit_scale,
            "image_size": teacher.image_size, "seconds": round(time.perf_counter() - started, 1), "fit": fit}
    (out / "teacher.json").write_text(json.dumps(info, indent=2))


def _load_from(name: str, spec, artifact: Path, key: str) -> Teacher:
    encoder = kind_of(spec).load(name, spec, artifact)
    scale = float(encoder.model.logit_scale.detach().exp())
    with torch.no_grad():
        dim = int(encoder.encode_texts(["a"]).shape[-1])
    return Teacher(name, key, encoder, scale, dim)


def _read(name: str, key: str, path: Path, hit: bool) -> FittedTeacher:
    info = json.loads((path / "teacher.json").read_text())
    result = json.loads((path / "eval.json").read_text())
    return FittedTeacher(name, key, path, hit, info, result["metrics"], list(result["headline"]))


def fit_teacher(name: str, ws: Workspace, zoo: Zoo | None = None, progress: bool = True,
                baseline_experiment: str = BASELINE_EXPERIMENT) -> FittedTeacher:
    """Fit ``name`` (or find it in the cache), with an MLflow run in the ``teachers`` experiment."""
    spec = teacher_spec(name, zoo)
    ensure_datasets(required_datasets(name, spec, ws), ws.ensure(), progress)
    key = teacher_key(name, spec, ws)

    def build(out: Path, run: TrackedRun) -> None:
        _build(name, spec, key, ws, out, run.reporter, progress)

    def log(run: TrackedRun, result: StageResult) -> None:
        _log_fitted(run, _read(name, key, result.path, result.hit), baseline_experiment)

    result, _ = run_tracked(TEACHER, key, ws, experiment=EXPERIMENT, run_name=name,
                            tags={f"{TAG_PREFIX}kind": "teacher", f"{TAG_PREFIX}teacher": name,
                                  f"{TAG_PREFIX}teacher_kind": spec.kind},
                            params=spec.model_dump(mode="json"), build=build, log=log)
    return _read(name, key, result.path, result.hit)


def _log_fitted(run: TrackedRun, fitted: FittedTeacher, baseline_experiment: str) -> None:
    tracker, run_id = run.tracker, run.run_id
    result = json.loads((fitted.path / "eval.json").read_text())
    step = int(fitted.info["fit"].get("seen_samples", 0))  # after a scratch teacher's periodic evals
    tracker.log_metrics(run_id, {f"eval/{k}": v for k, v in result["metrics"].items()}, step)
    tracker.log_metrics(run_id, {f"chance/{k}": v for k, v in result["chance"].items()}, step)
    tracker.log_metrics(run_id, {f"stderr/{k}": v for k, v in result["stderr"].items()}, step)
    tracker.log_metrics(run_id, {"teacher/logit_scale": fitted.info["logit_scale"],
                                 "teacher/embed_dim": fitted.info["embed_dim"],
                                 "teacher/seconds": fitted.info["seconds"]}, step)
    best = tracker.best_metric(baseline_experiment, "eval/avg")
    if best is not None and "avg" in fitted.metrics:
        tracker.log_metrics(run_id, {"baseline/best_student_avg": best}, step)
        tracker.set_tags(run_id, {f"{TAG_PREFIX}beats_baseline": fitted.metrics["avg"] > best})
    for name in ("teacher.json", "eval.json", "eval.txt", "spec.yaml"):
        tracker.log_file(run_id, fitted.path / name)


def list_teachers(ws: Workspace, zoo_path: Path | None = None) -> str:
    """One line per zoo teacher: name, source, and its scores if fitted (against the current data)."""
    zoo = load_zoo(zoo_path)
    cache = StageCache(ws.cache_dir)
    lines = []
    for name, spec in zoo.teachers.items():
        source = kind_of(spec).describe(spec)
        try:
            key = teacher_key(name, spec, ws)
            state = (f"fitted ({key}): {_read(name, key, cache.path(TEACHER.name, key), True).summary()}"
                     if cache.has(TEACHER.name, key) else "not fitted")
        except (FileNotFoundError, ConfigError):
            state = "not fitted (its data is not built)"
        lines.append(f"{name:20} {state:36} {source}")
    return "\n".join(lines)


def load_teacher(name: str, ws: Workspace, zoo: Zoo | None = None) -> Teacher:
    """A fitted teacher from the stage cache; an unfitted one is an error that says how to fit it."""
    spec = teacher_spec(name, zoo)
    key = teacher_key(name, spec, ws)
    path = StageCache(ws.cache_dir).path(TEACHER.name, key)
    if not path.is_dir():
        raise ConfigError(f"teacher {name!r}", f"not fitted yet; run `workbench teacher fit {name}`")
    return _load_from(name, spec, path, key)
