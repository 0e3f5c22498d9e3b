"""Children that end with their parent, and process groups stopped whole (real processes, Linux)."""

import os
import subprocess
import sys
import time

import pytest

from workbench.processes import start_group, stop_group

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

FORKING_SERVER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def wait_until(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_stopping_a_group_stops_what_its_leader_forked():
    server = start_group([sys.executable, "-c", FORKING_SERVER], stdout=subprocess.PIPE, text=True)
    worker = int(server.stdout.readline())
    assert os.getpgid(worker) == server.pid  # the fork stayed in the server's own group
    stop_group(server, grace_s=5)
    assert wait_until(lambda: not alive(worker))


def test_a_server_started_in_a_group_gets_sigterm_when_its_parent_dies():
    """The parent (a short-lived launcher) starts the server and dies; the server must not outlive it."""
    launcher = ("import sys; from workbench.processes import start_group; "
                "p = start_group([sys.executable, '-c', 'import time; time.sleep(600)']); print(p.pid, flush=True)")
    out = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, timeout=60, check=True)
    server = int(out.stdout)
    assert wait_until(lambda: not alive(server))
