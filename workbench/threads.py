"""torch's CPU thread count, set by the work itself rather than inherited from whoever called it.

Float sums are ordered by the thread count, so a result computed on 1 thread and on 2 differ in the last
bits and, after training, in the metrics. Each stage therefore pins its own count (part of its config, hence
of its key), and a study's ``--workers`` never changes a number.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

FIT_THREADS = 0
"""torch threads of teacher and captioner fits and caption generation (0: every core), whatever the caller
runs on (a study worker pins one per trial; the CLI leaves torch's default): a fitted model never depends on
which command fitted it."""


def resolve_threads(threads: int) -> int:
    """``threads``, or every core of this machine for 0."""
    return threads or os.cpu_count() or 1


@contextmanager
def pinned_threads(threads: int) -> Iterator[int]:
    """Run the block on ``threads`` torch threads (0: every core), then restore the caller's count."""
    before = torch.get_num_threads()
    torch.set_num_threads(resolve_threads(threads))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
