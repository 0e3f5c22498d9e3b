"""A real PostgreSQL server on loopback for the tests of shared stores (`make test` installs the Debian
package where it is missing). The server runs as the `postgres` user when the tests run as root, binds
127.0.0.1 on a free port, and is killed with the process that started it (PR_SET_PDEATHSIG), so an
interrupted test run leaves no server behind."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid
from glob import glob
from pathlib import Path

import psycopg

from workbench.processes import die_with_parent

SUPERUSER = "workbench"


def postgres_bindir() -> Path | None:
    """Where initdb and postgres are: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """``start()`` a throwaway cluster under ``root``; ``database()`` a fresh empty database's URL."""

    def __init__(self, root: Path, bindir: Path):
        self.root, self.bindir, self.port = root, bindir, free_port()
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.process: subprocess.Popen | None = None

    def _as_owner(self) -> None:  # runs in the child, before exec
        if self.user:
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)
        die_with_parent()  # after setuid, which clears the parent-death signal

    def start(self) -> "PostgresServer":
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        data = self.root / "data"
        init = subprocess.run([str(self.bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                               "-E", "UTF8", "--no-sync"], capture_output=True, text=True, preexec_fn=self._as_owner)
        if init.returncode:
            raise RuntimeError(f"initdb failed: {init.stderr[-2000:]}")
        log = open(self.root / "server.log", "wb")
        self.process = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
             "-k", str(self.root), "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._as_owner)
        deadline = time.time() + 60
        while True:
            try:
                psycopg.connect(self._dsn("postgres"), connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: {(self.root / 'server.log').read_text()[-2000:]}")
                time.sleep(0.2)

    def _dsn(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        name = f"t{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self._dsn(name)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
