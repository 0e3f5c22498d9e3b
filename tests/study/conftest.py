import os
from pathlib import Path

import pytest


def write_study(path: Path, suite: str, axes: str, extra: str = "", seeds: int = 2) -> Path:
    path.write_text(f"""
study: shapes-test
profile: smoke
set:
  data.train: [shapes]
  data.max_train_samples: 96
  eval.suite: {suite}
  train.steps: 6
  train.eval_every: 3
axes:
{axes}
seeds: {seeds}
table: {{rows: lr, metrics: [zeroshot, retrieval, avg]}}
{extra}
""")
    return path


@pytest.fixture
def study_writer(shapes_suite: str):
    """``study_writer(path, axes, extra="", seeds=2)`` writes a smoke-profile shapes study."""
    return lambda path, axes, extra="", seeds=2: write_study(path, shapes_suite, axes, extra, seeds)


@pytest.fixture
def shapes_study(tmp_path: Path, shapes_suite: str) -> Path:
    return write_study(tmp_path / "study.yaml", shapes_suite, "  lr: {key: train.lr, values: [1.0e-3, 3.0e-3]}")


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server on loopback for the session (tests/postgres.py); ``postgres.database()`` gives
    each test its own empty database."""
    import shutil
    import tempfile

    from tests.postgres import PostgresServer, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (`make test` installs it: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))  # not under pytest's 0700 folder: the server's user reads it
    root.chmod(0o755)
    server = PostgresServer(root / "cluster", bindir)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mlflow_server(postgres, tmp_path):
    """`workbench server` on a loopback port, its runs in a fresh PostgreSQL database; yields its URL."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.postgres import free_port
    from workbench.processes import terminated_with_parent

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "workbench.cli", "--workspace", str(tmp_path / "server-ws"),
                                "server", "--port", str(port), "--workers", "1", "--backend-store-uri",
                                postgres.database(), "--artifacts", str(tmp_path / "served-artifacts")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=terminated_with_parent)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the MLflow server did not start:\n{process.stdout.read().decode()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        groups = {os.getpgid(pid) for pid in _pids_with(f"--port {port}") if pid != process.pid}  # MLflow's group
        process.send_signal(signal.SIGTERM)  # `workbench server` stops MLflow's process group, then exits
        process.wait(timeout=60)
        left = [pid for pid in _pids_with("") if _group(pid) in groups]
        assert not left, f"the MLflow server left processes {left}"


def _pids_with(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (from /proc)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if text in open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(entry))
        except OSError:
            continue
    return found


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
