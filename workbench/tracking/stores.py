"""The workspace's sqlite stores (MLflow, Optuna) come into being whole or not at all.

A store is built in a scratch file beside its final path — schema created by the real MLflow or Optuna
code — and renamed into place, so a process killed at any moment leaves either no store or a complete
one, never a half-migrated file that every later command refuses. A lock beside the store makes
concurrent first opens build once; a store already in place is never replaced by a fresh one, so no
worker's runs are lost. Remote stores (``http://``, ``postgresql://``, ...) are left to their server.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import optuna
import sqlalchemy
from filelock import FileLock, Timeout

LOCK_TIMEOUT_S = 600  # building a store takes seconds; a lock held this long is stuck


class StoreError(RuntimeError):
    """A store that cannot be opened as it is; the message says what to run."""


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; None for remote stores and in-memory databases."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _remove_side_files(path: Path) -> None:
    """Delete a sqlite file's journal files: a stale one would be replayed into the next file of that name."""
    for suffix in ("-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def ensure_sqlite_store(url: str, build: Callable[[str], None],
                        needs_build: Callable[[Path], bool] = lambda path: not path.exists()) -> None:
    """Make the sqlite store at ``url`` whole before anyone opens it.

    ``build(scratch_url)`` creates the complete schema at a scratch URL and closes every connection;
    ``needs_build(path)`` says whether the store at ``path`` is missing (or, for a repairable store,
    half-made and empty); it raises StoreError for a store it must not touch. Non-sqlite URLs pass.
    """
    path = sqlite_file(url)
    if path is None or not needs_build(path):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise StoreError(f"{path}: another process has been creating this store for {LOCK_TIMEOUT_S} s "
                         f"(lock {lock.lock_file}); stop it, or delete the lock file if no process holds it")
    try:
        if not needs_build(path):  # another process finished it while we waited
            return
        scratch = path.with_name(f"{path.name}.new")
        scratch.unlink(missing_ok=True)  # left by a builder killed mid-way
        _remove_side_files(scratch)
        build(f"sqlite:///{scratch}")
        _remove_side_files(path)  # of a half-made, empty store that needs_build let us replace
        os.replace(scratch, path)
    finally:
        lock.release()


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` (and ``postgres://``) through psycopg 3, the driver this package installs;
    other URLs as given."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def optuna_engine_kwargs(url: str) -> dict:
    """Workers share one sqlite file: wait for its lock rather than failing at once."""
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def _build_optuna_store(url: str) -> None:
    storage = optuna.storages.RDBStorage(url, engine_kwargs=optuna_engine_kwargs(url))
    storage.remove_session()
    storage.engine.dispose()


def open_optuna_storage(url: str, **heartbeat) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url``, a local sqlite file first created whole (see the module doc);
    ``heartbeat``: RDBStorage's heartbeat_interval, grace_period and heartbeat_stale_trial_callback."""
    ensure_sqlite_store(url, _build_optuna_store)
    shared = url.startswith(("postgresql", "postgres"))  # workers starting together: one creates the schema
    with store_lock(url, "optuna-schema") if shared else contextlib.nullcontext():
        return optuna.storages.RDBStorage(sqlalchemy_url(url), engine_kwargs=optuna_engine_kwargs(url), **heartbeat)


@functools.cache
def _lock_engine(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(sqlalchemy_url(url), poolclass=sqlalchemy.pool.NullPool)


@functools.cache
def _thread_lock(name: str) -> threading.Lock:
    return threading.Lock()


@contextmanager
def store_lock(url: str, name: str) -> Iterator[None]:
    """Hold ``name`` against every process that shares the store at ``url``, on any machine: an advisory
    lock in a PostgreSQL database (released by the server if its holder dies), a file lock beside a sqlite
    file. Workers take it to fill and pop a study's queue, so no point is queued or claimed twice."""
    if url.startswith(("postgresql", "postgres")):
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with _lock_engine(url).connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        return
    path = sqlite_file(url)
    if path is None and not url.startswith("sqlite"):
        raise StoreError(f"{url.split(':', 1)[0]}: workers share a study through PostgreSQL or a local "
                         f"sqlite file (set WORKBENCH_OPTUNA_STORAGE=postgresql://user@host/db)")
    if path is None:  # an in-memory database lives in this process alone
        with _thread_lock(name):
            yield
        return
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    with FileLock(f"{path}.{digest}.lock", timeout=LOCK_TIMEOUT_S):
        yield
