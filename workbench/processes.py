"""Child processes that end with the process that started them: trial workers, torchrun ranks, MLflow servers.

Two mechanisms, used together where a child forks children of its own (MLflow's servers fork request and job
workers): the Linux parent-death signal, so a child stops when its parent dies however it died, and a
process group of its own, so stopping the child stops everything it forked.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies (Linux; elsewhere nothing). Set in a
    child before exec (``preexec_fn``) or first thing in a spawned process. With ``parent`` (the pid that
    started us), exit at once if it already died before the call took effect."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def terminated_with_parent() -> None:
    """``preexec_fn`` for servers: SIGTERM (which lets them stop their own workers) when the parent dies."""
    die_with_parent(signal.SIGTERM)


def start_group(command: list[str], **popen) -> subprocess.Popen:
    """Start ``command`` in a process group of its own that :func:`stop_group` ends whole, sent SIGTERM if
    this process dies."""
    return subprocess.Popen(command, start_new_session=True, preexec_fn=terminated_with_parent, **popen)


def stop_group(process: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM the process group ``process`` leads, wait up to ``grace_s`` for all of it to exit, then
    SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.time() + grace_s
    while time.time() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        process.poll()  # reap the leader, so the group can empty
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def serve_until_stopped(process: subprocess.Popen) -> None:
    """Wait on a server started with :func:`start_group`; Ctrl-C or SIGTERM stop its whole group, not just us."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_group(process)
