"""The stage cache: every stage's artifact lives under a key derived from what produced it.

key = hash(stage name, stage version, resolved stage config, keys of its inputs). An artifact is built
in a private temporary folder and committed with one atomic rename, so a reader sees a whole artifact
or none. A per-key lock keeps two workers from building the same artifact at once; the loser of the
race waits and then reads the winner's artifact as a hit. Long stages keep resumable state in
``<key>.partial/`` which survives a killed process.

Every artifact built also records what it cost, in its own ``stage_cost.json``: wall and CPU seconds of
this stage alone (builds nested in it, such as a teacher's feature cache, record their own and are left
out), its bytes, and ``uses``: the artifacts its build read or built, so a trial's whole upstream cost
can be walked from its own stages (``workbench.stages.ledger``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator


log = logging.getLogger(__name__)


def log_stages_to_stderr() -> None:
    """One timestamped line on stderr when a stage is found in the cache, starts building and is built:
    what a long run is doing shows in a log file too. Called by the CLI."""
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a test runner swaps it per command)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def announce_hit(stage: str, key: str) -> None:
    log.info("%s %s: cache hit", stage, key)


def building(stage: str, key: str) -> float:
    """Log that ``stage`` starts building ``key``; the start time, for the "built in" line."""
    log.info("%s %s: building", stage, key)
    return time.perf_counter()


COST_FILE = "stage_cost.json"


@dataclass
class _Build:
    """A build in progress in this process: its start and what the builds nested in it took."""

    stage: str
    key: str
    wall_start: float
    cpu_start: float
    nested_wall: float = 0.0
    nested_cpu: float = 0.0
    uses: set[str] = field(default_factory=set)
    resumed: bool = False


_BUILDS: list[_Build] = []
"""Builds in progress in this process, innermost last."""


def _cpu_seconds() -> float:
    """User and system CPU of this process (all its threads) and of its reaped child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def note_use(stage: str, key: str) -> None:
    """Record that the build in progress (if any) reads the artifact ``stage/key``."""
    if _BUILDS:
        _BUILDS[-1].uses.add(f"{stage}/{key}")


@contextlib.contextmanager
def recording(stage: str, key: str, resumed: bool = False) -> Iterator[_Build]:
    """Time the build of ``stage/key`` (wall and CPU, net of nested builds) and collect what it reads.
    Re-entering the build already on top (a stage's work, then its commit) continues that record."""
    if _BUILDS and (_BUILDS[-1].stage, _BUILDS[-1].key) == (stage, key):
        yield _BUILDS[-1]
        return
    build = _Build(stage, key, time.perf_counter(), _cpu_seconds(), resumed=resumed)
    _BUILDS.append(build)
    try:
        yield build
    finally:
        _BUILDS.pop()
        if _BUILDS:  # the enclosing build used this one and does not pay for it
            _BUILDS[-1].nested_wall += time.perf_counter() - build.wall_start
            _BUILDS[-1].nested_cpu += _cpu_seconds() - build.cpu_start
            _BUILDS[-1].uses.add(f"{stage}/{key}")


def _write_cost(folder: Path, build: _Build) -> None:
    record = {"stage": build.stage, "key": build.key,
              "wall_seconds": round(time.perf_counter() - build.wall_start - build.nested_wall, 3),
              "cpu_seconds": round(_cpu_seconds() - build.cpu_start - build.nested_cpu, 3),
              "bytes": sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
              "uses": sorted(build.uses), "resumed": build.resumed}
    (folder / COST_FILE).write_text(json.dumps(record, indent=1))


def read_cost(folder: Path) -> dict | None:
    """An artifact's cost record; None for one built before costs were recorded."""
    try:
        return json.loads((folder / COST_FILE).read_text())
    except (OSError, ValueError):
        return None


def stage_key(stage: str, version: int, config: Any, inputs: dict[str, str] | None = None) -> str:
    payload = json.dumps({"stage": stage, "version": version, "config": config, "inputs": inputs or {}},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StageResult:
    stage: str
    key: str
    path: Path
    hit: bool


class StageCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def partial_dir(self, stage: str, key: str) -> Path:
        """Resumable state of an unfinished build of ``key`` (kept across killed runs)."""
        return self.root / stage / f"{key}.partial"

    def has(self, stage: str, key: str) -> bool:
        return self.path(stage, key).is_dir()

    @contextlib.contextmanager
    def _lock(self, stage: str, key: str) -> Iterator[None]:
        lock_path = self.root / stage / f"{key}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def get_or_build(self, stage: str, key: str, build: Callable[[Path], None],
                     started: float | None = None) -> StageResult:
        """Return the artifact for ``key``, calling ``build(tmp_dir)`` first if it does not exist.
        ``started`` (a ``building()`` time): the stage did its work before, in its partial folder, and
        ``build`` only commits it; the log then times the whole."""
        final = self.path(stage, key)
        if final.is_dir():
            announce_hit(stage, key)
            note_use(stage, key)
            return StageResult(stage, key, final, hit=True)
        with self._lock(stage, key), recording(stage, key, self.partial_dir(stage, key).exists()) as record:
            if final.is_dir():  # built by another worker while we waited
                announce_hit(stage, key)
                return StageResult(stage, key, final, hit=True)
            tmp = final.with_name(f".{key}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            started = started if started is not None else building(stage, key)
            try:
                build(tmp)
                _write_cost(tmp, record)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            os.replace(tmp, final)
            log.info("%s %s: built in %.0f s", stage, key, time.perf_counter() - started)
            shutil.rmtree(self.partial_dir(stage, key), ignore_errors=True)
        return StageResult(stage, key, final, hit=False)
