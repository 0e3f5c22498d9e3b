"""The one runner of a cached stage that has its own MLflow run (teacher, captioner, caption quality,
reinforcement).

A hit is an artifact in the cache *and* a finished run that records it: nothing is fitted or logged
again. Otherwise runs left RUNNING by a dead process are ended, a run is started, the artifact is built
(or found: a fresh MLflow store over an old cache logs it without rebuilding) and the stage's ``log``
records it. A failure ends the run FAILED (KILLED on Ctrl-C) and keeps the stage's partial work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from workbench.stages.cache import StageCache, StageResult, announce_hit, note_use, recording
from workbench.stages.registry import Stage
from workbench.tracking.mlflow_store import TAG_PREFIX, RunReporter, Tracker, flatten
from workbench.workspace import Workspace


@dataclass(frozen=True)
class TrackedRun:
    tracker: Tracker
    run_id: str

    @property
    def reporter(self) -> RunReporter:
        """Streams a build's metrics (losses, periodic evals) into this run."""
        return RunReporter(self.tracker, self.run_id)


def run_tracked(stage: Stage, key: str, ws: Workspace, *, experiment: str, run_name: str, tags: dict[str, Any],
                params: dict[str, Any], build: Callable[[Path, TrackedRun], None],
                log: Callable[[TrackedRun, StageResult], None],
                work: Callable[[TrackedRun], float] | None = None) -> tuple[StageResult, str | None]:
    """The artifact of ``stage`` at ``key`` and the id of the run that logged it now (None on a hit).

    ``build(out, run)`` fills the artifact's folder. ``work(run)``, when given, does the stage's long
    work first, resumable in its partial folder and outside the artifact's lock, and returns when that
    work began (``building()``): ``build`` then only commits it, and the stage's log line times both.
    """
    cache, tracker = StageCache(ws.cache_dir), Tracker(ws)
    tag = f"{TAG_PREFIX}{stage.tag}"
    if cache.has(stage.name, key) and tracker.find_runs(experiment, {tag: key}):
        announce_hit(stage.name, key)
        note_use(stage.name, key)
        return StageResult(stage.name, key, cache.path(stage.name, key), hit=True), None
    tracker.mark_dead_runs_killed(experiment)
    with tracker.tracked_run(experiment, run_name, {**tags, tag: key}) as run_id:
        run = TrackedRun(tracker, run_id)
        tracker.log_params(run_id, flatten(params))
        if work and not cache.has(stage.name, key):  # the work is the build's: it records its cost and uses
            with recording(stage.name, key, cache.partial_dir(stage.name, key).exists()):
                started = work(run)
                result = cache.get_or_build(stage.name, key, lambda out: build(out, run), started)
        else:
            result = cache.get_or_build(stage.name, key, lambda out: build(out, run))
        log(run, result)
        tracker.set_tags(run_id, {f"{TAG_PREFIX}cache_hit": result.hit})
    return result, run_id
