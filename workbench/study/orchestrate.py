"""One Optuna study per study file: grid points (axes × seeds) or a sampler's search, run as trials.

Grid mode enqueues every grid point not yet complete, and workers take them one at a time under a lock
in the Optuna store (``store_lock``: advisory in PostgreSQL, a file beside sqlite), so neither local
``--workers N`` nor ``study worker`` processes on other machines ever run a point twice. Search mode
asks the named sampler for new points, up to the study's budget, and prunes on the intermediate evals.
A running trial beats a heartbeat into the store; one whose process died (``kill -9``, a lost machine)
is failed once its heartbeat is stale (or at once, on its own host, by its pid), its MLflow run ended
as KILLED and its point queued again for any worker. A failing trial is recorded with its reason and
the others go on.
"""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from optuna.trial import TrialState

from workbench.config.study import Study, load_study
from workbench.data.build import dataset_fingerprints
from workbench.processes import die_with_parent
from workbench.stages.cache import log_stages_to_stderr
from workbench.stages.ledger import COST_ARTIFACT, trial_cost
from workbench.study.lineage import log_lineage
from workbench.study.pipeline import run_trial_stages
from workbench.study.prepare import prepare_inputs
from workbench.study.references import load_checked
from workbench.study.trials import TrialSpec, build_trial, expand_grid
from workbench.threads import resolve_threads
from workbench.tracking.mlflow_store import TAG_PREFIX, Tracker, flatten, process_alive
from workbench.tracking.stores import open_optuna_storage, store_lock
from workbench.train.launch import replay_history
from workbench.train.trainer import TrainingPruned
from workbench.workspace import Workspace

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # fail_stale_trials
warnings.filterwarnings("ignore", "Heartbeat of storage is supposed")  # ask/tell beats with `heartbeat` below

HEARTBEAT_S = 30
"""How often a running trial tells the Optuna store it is alive."""
GRACE_HEARTBEATS = 4
"""A running trial silent for this many heartbeats is dead: failed, its point queued again."""
RETRIES = 2
"""Times a point whose worker died is queued again before it stays failed."""
DEAD_WORKER = "its worker stopped beating (killed, crashed or its machine lost)"
IDLE_POLL_S = 2.0
"""How often a worker with nothing to claim looks again while others' trials run."""
MAX_FAILURES_IN_A_ROW = 3
"""A ``study worker`` whose trials keep failing stops, rather than failing the whole queue."""


def open_optuna_study(study: Study, profile: str, ws: Workspace, worker: int = 0,
                      heartbeat_s: int = HEARTBEAT_S) -> optuna.Study:
    """The study's Optuna study. A search's sampler is seeded from the study's first seed, the ``worker``
    slot and the trials already there: reproducible for one uninterrupted worker, while parallel workers
    and resumed runs draw their own points instead of repeating each other's."""
    storage = open_optuna_storage(ws.optuna_storage, heartbeat_interval=heartbeat_s,
                                  grace_period=GRACE_HEARTBEATS * heartbeat_s,
                                  heartbeat_stale_trial_callback=_DeadTrial(ws))
    if study.search:
        samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
                    "cmaes": optuna.samplers.CmaEsSampler, "qmc": optuna.samplers.QMCSampler}
        summaries = optuna.get_all_study_summaries(storage)
        existing = next((s.n_trials for s in summaries if s.study_name == study.experiment(profile)), 0)
        sampler = samplers[study.search.sampler](seed=study.seed_list[0] + 1000 * worker + existing)
    else:
        space = {_grid_param(name): list(range(axis.size)) for name, axis in study.axes.items()}
        sampler = optuna.samplers.GridSampler({**space, _grid_param("seed"): study.seed_list}, seed=0)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=3) if study.search and study.search.pruner == "median"
              else optuna.pruners.NopPruner())
    return optuna.create_study(study_name=study.experiment(profile), storage=storage, sampler=sampler,
                               pruner=pruner, direction=study.objective.direction, load_if_exists=True)


@dataclass
class RunSummary:
    name: str
    total: int
    reused: int
    ran: int = 0
    failed: list[str] = field(default_factory=list)
    recovered: int = 0


class TrialReporter:
    """Streams a trial's metrics to its MLflow run and its intermediate objective to Optuna."""

    def __init__(self, tracker: Tracker, run_id: str, trial: optuna.Trial, prune: bool):
        self.tracker, self.run_id, self.trial, self.prune = tracker, run_id, trial, prune

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.tracker.log_metrics(self.run_id, metrics, step)

    def should_prune(self, objective: float, step: int) -> bool:
        if not self.prune:
            return False
        self.trial.report(objective, step)
        return self.trial.should_prune()


class _DeadTrial:
    """Optuna calls this for a trial whose heartbeat went stale: its MLflow run is ended as KILLED and
    its point queued again (``RETRIES`` times at most), for whichever worker asks next."""

    def __init__(self, ws: Workspace):
        self.ws = ws

    def __call__(self, opt_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if run_id := trial.user_attrs.get("mlflow_run_id"):  # (a failed trial's own attributes are frozen)
            Tracker(self.ws).end_dead_run(run_id, DEAD_WORKER)
        optuna.storages.RetryFailedTrialCallback(max_retry=RETRIES)(opt_study, trial)


@contextmanager
def heartbeat(opt_study: optuna.Study, trial: optuna.Trial, every_s: float) -> Iterator[None]:
    """Beat for ``trial`` every ``every_s`` seconds while the block runs (a daemon thread: a killed
    process stops beating, which is the point)."""
    storage, stop = opt_study._storage, threading.Event()
    storage.record_heartbeat(trial._trial_id)

    def beat() -> None:
        while not stop.wait(every_s):
            storage.record_heartbeat(trial._trial_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def claim_trial(opt_study: optuna.Study, study: Study, ws: Workspace) -> optuna.Trial | None:
    """The next trial of the study for this process, or None when it has no work left: a queued grid
    point, or a new search point while fewer than the budget are done, running or queued. Under the
    store's queue lock, after failing (and re-queueing) trials whose heartbeat is stale."""
    with store_lock(ws.optuna_storage, f"{opt_study.study_name}/queue"):
        optuna.storages.fail_stale_trials(opt_study)
        if study.search:
            active = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
            if len(opt_study.get_trials(deepcopy=False, states=active)) >= study.search.trials:
                return None
        elif not opt_study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return None
        return opt_study.ask()


def recover_dead_trials(opt_study: optuna.Study) -> int:
    """Fail RUNNING trials whose process is gone; enqueue their grid points again. Returns the count."""
    count = 0
    for trial in opt_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if process_alive(attrs.get("host"), attrs.get("pid")):
            continue
        _fail_unfinished(opt_study, trial, "process died (killed or crashed)")
        count += 1
    return count


def _fail_unfinished(opt_study: optuna.Study, trial: optuna.trial.FrozenTrial, reason: str) -> None:
    """Mark a waiting or running trial failed, with its reason, from outside the process that asked it."""
    opt_study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
    opt_study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def _grid_param(name: str) -> str:
    """Optuna's name for a grid coordinate (an axis index or the seed). Coordinates are integer ranges,
    not categoricals: Optuna refuses a categorical whose choices changed, and editing a study file (an
    axis value or a seed more) must rerun only the new points. (Studies run before used the bare names
    as categoricals; new names keep their records readable.)"""
    return f"grid.{name}"


def _grid_params(spec: TrialSpec) -> dict[str, Any]:
    return {**{_grid_param(name): i for name, i in spec.axis_indices.items()}, _grid_param("seed"): spec.seed}


def enqueue_pending(opt_study: optuna.Study, specs: list[TrialSpec]) -> tuple[int, int]:
    """Enqueue grid points with no complete, waiting or (live) running trial. Returns (complete, to run).

    Waiting trials left by an earlier, interrupted run are kept only while they still name a point of the
    file that is not complete, at the same grid coordinates: after an edit (values added, removed or
    reordered), an old waiting trial's coordinates would resolve to another point, which then ran twice.
    The others are dropped (failed, with the reason)."""
    coordinates = {spec.point_id: _grid_params(spec) for spec in specs}
    trials = opt_study.get_trials(deepcopy=False)
    complete = {t.user_attrs.get("point_id") for t in trials if t.state == TrialState.COMPLETE}
    queued = {t.user_attrs.get("point_id") for t in trials if t.state == TrialState.RUNNING}
    for trial in (t for t in trials if t.state == TrialState.WAITING):
        point = trial.user_attrs.get("point_id")
        same_place = point in coordinates and trial.system_attrs.get("fixed_params") == coordinates[point]
        if same_place and point not in complete and point not in queued:
            queued.add(point)
            continue
        _fail_unfinished(opt_study, trial, "superseded: its point is complete, queued twice, no longer in "
                                           "the study file or at other grid coordinates")
    for spec in specs:
        if spec.point_id not in complete and spec.point_id not in queued:
            opt_study.enqueue_trial(_grid_params(spec), user_attrs={"point_id": spec.point_id})
    n_complete = sum(spec.point_id in complete for spec in specs)
    waiting = len(opt_study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    return n_complete, waiting


def _suggest(trial: optuna.Trial, study: Study, path: str, profile: str) -> list[TrialSpec]:
    """Register the trial's parameters with Optuna and resolve its recipes: a grid trial's one point, or
    a search trial's suggested point at every seed of the study (its value is their mean)."""
    extra: dict[str, Any] = {}
    if study.search:  # axes are choices the sampler models as categories
        indices = {name: trial.suggest_categorical(name, list(range(axis.size))) for name, axis in study.axes.items()}
        seeds = study.seed_list
        for key, dist in study.search.space.items():
            extra[key] = ([_suggest_value(trial, f"{key}.{i}", d) for i, d in enumerate(dist.each)]
                          if hasattr(dist, "each") else _suggest_value(trial, key, dist))
    else:  # every grid trial was enqueued with its coordinates
        indices = {name: trial.suggest_int(_grid_param(name), 0, axis.size - 1) for name, axis in study.axes.items()}
        seeds = [trial.suggest_int(_grid_param("seed"), min(study.seed_list), max(study.seed_list))]
    return [build_trial(study, path, profile, indices, seed, extra) for seed in seeds]


def _suggest_value(trial: optuna.Trial, name: str, dist) -> Any:
    if hasattr(dist, "float"):
        return trial.suggest_float(name, *dist.float, log=dist.log)
    if hasattr(dist, "int"):
        return trial.suggest_int(name, *dist.int, log=dist.log)
    return trial.suggest_categorical(name, dist.choice)


def run_one_trial(trial: optuna.Trial, study: Study, path: str, profile: str, ws: Workspace, tracker: Tracker,
                  parent_id: str, progress: bool) -> float:
    """Run a trial's point, once per seed of a search, each in its own MLflow child run; its value is the
    mean objective over them. Raise on failure after recording it."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", str(os.getpid()))
    specs = _suggest(trial, study, path, profile)
    trial.set_user_attr("point_id", specs[0].point_id)
    values = [_run_point(trial, study, spec, profile, ws, tracker, parent_id, progress, report=i == 0)
              for i, spec in enumerate(specs)]
    if len(values) > 1:
        trial.set_user_attr("seed_values", {str(spec.seed): v for spec, v in zip(specs, values)})
    return sum(values) / len(values)


def _run_point(trial: optuna.Trial, study: Study, spec: TrialSpec, profile: str, ws: Workspace, tracker: Tracker,
               parent_id: str, progress: bool, report: bool) -> float:
    """One point at one seed in its own MLflow child run; ``report``: its intermediate objective goes to
    Optuna's pruner (a search's first seed only: one curve per trial)."""
    name = study.experiment(profile)
    tags = {f"{TAG_PREFIX}kind": "trial", f"{TAG_PREFIX}study": study.study, f"{TAG_PREFIX}profile": profile,
            f"{TAG_PREFIX}point_id": spec.point_id, f"{TAG_PREFIX}seed": spec.seed,
            f"{TAG_PREFIX}optuna_trial": trial.number, f"{TAG_PREFIX}git_commit": _git_commit(),
            f"{TAG_PREFIX}packages": _packages(),
            **{f"{TAG_PREFIX}axis.{k}": v for k, v in spec.axis_labels.items()}}
    run_id = tracker.start_run(name, f"{spec.title}", tags, parent_id)
    trial.set_user_attr("mlflow_run_id", run_id)
    try:
        recipe_dict = spec.recipe.model_dump(mode="json")
        tracker.log_params(run_id, flatten(recipe_dict))
        tracker.log_text(run_id, yaml.safe_dump(recipe_dict, sort_keys=False), "config/resolved.yaml")
        tracker.set_tags(run_id, {f"{TAG_PREFIX}data.{k}": v
                                  for k, v in dataset_fingerprints(ws, spec.recipe.data.train).items()})
        reporter = TrialReporter(tracker, run_id, trial, prune=bool(study.search) and report)
        outcome = run_trial_stages(spec.recipe, ws, reporter, study.objective.metric, progress)
        final_step = spec.recipe.train.steps * spec.recipe.train.batch_size
        if outcome.trained.hit:  # the history was streamed by the run that trained it
            replay_history(reporter, outcome.train_dir)
        tracker.log_metrics(run_id, {f"eval/{k}": v for k, v in outcome.metrics.items()}, final_step)
        tracker.log_metrics(run_id, {f"chance/{k}": v for k, v in outcome.chance.items()}, final_step)
        tracker.log_metrics(run_id, {f"stderr/{k}": v for k, v in outcome.stderr.items()}, final_step)
        tracker.set_tags(run_id, {**{f"{TAG_PREFIX}stage.{s}": k for s, k in outcome.stage_keys.items()},
                                  f"{TAG_PREFIX}cache_hit": outcome.all_hits})
        tracker.log_file(run_id, outcome.eval_dir / "eval.json", "eval")
        cost = trial_cost(ws.cache_dir, {s.stage: s.key for s in (outcome.trained, outcome.evaluated)},
                          [(s.stage, s.key) for s in outcome.upstream], final_step)
        tracker.log_metrics(run_id, cost.pop("metrics"), final_step)
        tracker.log_text(run_id, json.dumps(cost, indent=1), COST_ARTIFACT)
        log_lineage(tracker, run_id, outcome.lineage)
        tracker.log_file(run_id, outcome.train_dir / "summary.json", "train")
        tracker.end_run(run_id, "FINISHED")
        return outcome.metrics[study.objective.metric]
    except BaseException as error:
        reason = f"{type(error).__name__}: {error}"
        trial.set_user_attr("fail_reason", reason[:2000])
        tracker.set_tags(run_id, {f"{TAG_PREFIX}failure": reason[:5000]})
        tracker.log_text(run_id, traceback.format_exc(), "failure.txt")
        stopped = isinstance(error, (KeyboardInterrupt, TrainingPruned))  # not a defect of the trial
        tracker.set_tags(run_id, {f"{TAG_PREFIX}pruned": isinstance(error, TrainingPruned)})
        tracker.end_run(run_id, "KILLED" if stopped else "FAILED")
        raise


PACKAGES = ("torch", "torchvision", "open_clip_torch", "timm", "numpy")
"""The libraries whose versions can change a trial's numbers; each run records them."""


@functools.cache
def _packages() -> str:
    """'python 3.11.7, torch 2.14.1, ...': what computed this process's numbers, beside its commit."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    return ", ".join([f"python {platform.python_version()}", *(f"{name} {installed(name)}" for name in PACKAGES)])


@functools.cache
def _git_commit(where: Path = Path(__file__).parent) -> str:
    """The commit of the code this process runs, read once (a commit made while a study runs is not this
    process's code), with ``+dirty`` when tracked files differ from it; "unknown" outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                              cwd=where).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = commit and git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit or "unknown"


def worker_loop(path: str, profile: str, ws: Workspace, parent_id: str, remaining, lock, threads: int,
                progress: bool, worker: int = 0, heartbeat_s: int = HEARTBEAT_S) -> None:
    """Take trials until the study has none left for this process: ``remaining`` (a shared counter under
    ``lock``, for one ``study run``'s local processes) or, when None (``study worker``), until nothing is
    queued or running anywhere (a running trial's worker may die, and its point come back) or
    ``MAX_FAILURES_IN_A_ROW`` trials failed in a row. Runs in the main process or a spawned worker."""
    parent = mp.parent_process()
    if parent is not None:  # a spawned worker: a killed study leaves no orphan still training,
        die_with_parent(parent=parent.pid)  # so its rerun can judge every unfinished trial dead
    _git_commit()  # read once, as the worker starts, not when its last trial ends
    if progress:  # a spawned worker has no logging set up: say what it builds, as the CLI does
        log_stages_to_stderr()
    if threads:
        torch.set_num_threads(threads)
    study = load_study(path)
    opt_study = open_optuna_study(study, profile, ws, worker, heartbeat_s)
    tracker = Tracker(ws)
    failures = 0
    while remaining is not None or failures < MAX_FAILURES_IN_A_ROW:
        with lock:
            if remaining is not None and remaining.value <= 0:
                return
            trial = claim_trial(opt_study, study, ws)
            if trial is not None and remaining is not None:
                remaining.value -= 1
        if trial is None:
            if remaining is None and opt_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(min(heartbeat_s, IDLE_POLL_S))  # another worker's trial may die and its point come back
                continue
            return
        failures += 1
        try:
            with heartbeat(opt_study, trial, heartbeat_s):
                value = run_one_trial(trial, study, path, profile, ws, tracker, parent_id, progress)
            opt_study.tell(trial, value)
            failures = 0
            print(f"[trial {trial.number}] done: {study.objective.metric} = {value:.4f}", flush=True)
        except TrainingPruned:
            opt_study.tell(trial, state=TrialState.PRUNED)
            failures = 0
            print(f"[trial {trial.number}] pruned", flush=True)
        except KeyboardInterrupt:
            opt_study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as error:
            if "fail_reason" not in trial.user_attrs:  # failed before its MLflow run started
                trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}"[:2000])
            opt_study.tell(trial, state=TrialState.FAIL)
            print(f"[trial {trial.number}] FAILED: {type(error).__name__}: {error}", flush=True)
    print(f"stopping: {MAX_FAILURES_IN_A_ROW} trials failed in a row on this worker; the rest stay queued "
          f"(`workbench study status` lists why they failed)", flush=True)


def default_workers(specs: list[TrialSpec]) -> int:
    """As many trials at once as the cores hold at each trial's pinned ``train.threads`` (0: all cores)."""
    cores = os.cpu_count() or 1
    per_trial = max((resolve_threads(s.recipe.train.threads) for s in specs), default=cores)
    return max(1, cores // per_trial)


def run_study(path: str | Path, ws: Workspace, profile: str | None = None, workers: int | None = 1,
              progress: bool = True) -> RunSummary:
    """Validate, prepare inputs, then run every trial not already complete (``workers`` None: as many
    local processes as the cores hold at the trials' thread count)."""
    path = str(path)
    study = load_checked(path, ws)  # the workspace's checks too: imported dataset names, where suites lie
    profile = profile or study.profile
    specs = expand_grid(study, path, profile)  # validates every point before any work starts
    workers = workers or default_workers(specs)
    ws.ensure()
    name = study.experiment(profile)
    tracker = Tracker(ws)
    tracker.mark_dead_runs_killed(name)
    opt_study = open_optuna_study(study, profile, ws)
    with store_lock(ws.optuna_storage, f"{opt_study.study_name}/queue"):
        summary, todo = _fill_queue(opt_study, study, specs, name)
    if todo == 0:
        return summary
    prepare_inputs([s.recipe for s in specs], ws, progress)
    parent_id = _start_parent_run(tracker, study, profile, path, f"{study.study} ({profile})")
    finished_before = {t.number for t in opt_study.get_trials(deepcopy=False) if t.state.is_finished()}
    status = "FAILED"
    try:
        _run_workers(path, profile, ws, parent_id, todo, workers, progress)
        status = "FINISHED"
    finally:
        tracker.end_run(parent_id, status if status == "FINISHED" else "KILLED")
    summary.ran = todo
    summary.failed = [f"trial {t.number} ({t.user_attrs.get('point_id', '?')}): {t.user_attrs.get('fail_reason', '?')}"
                      for t in opt_study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                      if t.number not in finished_before]
    return summary


def join_study(path: str | Path, ws: Workspace, profile: str | None = None, progress: bool = True,
               heartbeat_s: int = HEARTBEAT_S) -> RunSummary:
    """``workbench study worker``: join the study in the shared Optuna store (PostgreSQL across machines),
    queue its grid points if no one has, and run trials until none is left for anyone. Any number of
    workers may join at any time; their trials are children of one MLflow parent run, which the last
    worker to find the study done ends."""
    path = str(path)
    study = load_checked(path, ws)
    profile = profile or study.profile
    specs = expand_grid(study, path, profile)
    ws.ensure()
    name = study.experiment(profile)
    tracker = Tracker(ws)
    slot = int.from_bytes(f"{socket.gethostname()}:{os.getpid()}".encode()[-4:], "big")  # own search draws
    opt_study = open_optuna_study(study, profile, ws, slot, heartbeat_s)
    lock_name = f"{opt_study.study_name}/queue"
    with store_lock(ws.optuna_storage, lock_name):
        summary, _ = _fill_queue(opt_study, study, specs, name)
        parent_id = _shared_parent_run(opt_study, tracker, study, profile, path)
    prepare_inputs([s.recipe for s in specs], ws, progress)
    started = datetime.now()
    worker_loop(path, profile, ws, parent_id, None, nullcontext(), 0, progress, slot, heartbeat_s)
    with store_lock(ws.optuna_storage, lock_name):
        trials = opt_study.get_trials(deepcopy=False)
        done = not any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
        if done and tracker.run_status(parent_id) == "RUNNING":
            tracker.end_run(parent_id, "FINISHED")
    pid = str(os.getpid())
    mine = [t for t in trials if t.user_attrs.get("pid") == pid and t.user_attrs.get("host") == socket.gethostname()
            and t.datetime_start and t.datetime_start >= started]
    summary.ran = len(mine)
    summary.failed = [f"trial {t.number} ({t.user_attrs.get('point_id', '?')}): {t.user_attrs.get('fail_reason', '?')}"
                      for t in mine if t.state == TrialState.FAIL]
    return summary


def _shared_parent_run(opt_study: optuna.Study, tracker: Tracker, study: Study, profile: str, path: str) -> str:
    """The MLflow parent run the study's workers share (under the queue lock): the one recorded in the
    Optuna study while it is running, else a new one."""
    parent_id = opt_study.user_attrs.get("worker_parent_run")
    if parent_id and tracker.run_status(parent_id) == "RUNNING":
        return parent_id
    parent_id = _start_parent_run(tracker, study, profile, path, f"{study.study} ({profile}, workers)")
    opt_study.set_user_attr("worker_parent_run", parent_id)
    return parent_id


def _start_parent_run(tracker: Tracker, study: Study, profile: str, path: str, title: str) -> str:
    parent_id = tracker.start_run(study.experiment(profile), title,
                                  {f"{TAG_PREFIX}kind": "study", f"{TAG_PREFIX}study": study.study,
                                   f"{TAG_PREFIX}profile": profile, f"{TAG_PREFIX}git_commit": _git_commit()})
    tracker.log_file(parent_id, Path(path), "study")
    return parent_id


def _fill_queue(opt_study: optuna.Study, study: Study, specs: list[TrialSpec], name: str) -> tuple[RunSummary, int]:
    """(Under the queue lock) fail trials whose process is gone, queue the grid points not complete;
    the summary so far and how many trials are left to run."""
    recovered = recover_dead_trials(opt_study)
    if study.search:
        finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in opt_study.get_trials(deepcopy=False))
        reused, todo, total = finished, max(0, study.search.trials - finished), study.search.trials
    else:
        reused, todo = enqueue_pending(opt_study, specs)
        total = len(specs)
    return RunSummary(name, total, reused, recovered=recovered), todo


def _run_workers(path: str, profile: str, ws: Workspace, parent_id: str, todo: int, workers: int,
                 progress: bool) -> None:
    workers = max(1, min(workers, todo))
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0
    if workers == 1:
        worker_loop(path, profile, ws, parent_id, mp.Value("i", todo), threading.Lock(), threads, progress)
        return
    ctx = mp.get_context("spawn")
    remaining, lock = ctx.Value("i", todo), ctx.Lock()
    procs = [ctx.Process(target=worker_loop, args=(path, profile, ws, parent_id, remaining, lock, threads, False, i))
             for i in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
