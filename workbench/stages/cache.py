"""The stage cache: every stage's artifact lives under a key derived from what produced it.

key = hash(stage name, stage version, resolved stage config, keys of its inputs). An artifact is built
in a private temporary folder and committed with one atomic rename, so a reader sees a whole artifact
or none. A per-key lock keeps two workers from building the same artifact at once; the loser of the
race waits and then reads the winner's artifact as a hit. Long stages keep resumable state in
``<key>.partial/`` which survives a killed process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
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
            return StageResult(stage, key, final, hit=True)
        with self._lock(stage, key):
            if final.is_dir():  # built by another worker while we waited
                announce_hit(stage, key)
                return StageResult(stage, key, final, hit=True)
            tmp = final.with_name(f".{key}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            started = started if started is not None else building(stage, key)
            try:
                build(tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            os.replace(tmp, final)
            log.info("%s %s: built in %.0f s", stage, key, time.perf_counter() - started)
            shutil.rmtree(self.partial_dir(stage, key), ignore_errors=True)
        return StageResult(stage, key, final, hit=False)
