"""Progress of long work, on a terminal and off it.

On a terminal: tqdm's bar. Off one (``nohup``, a scheduler, a pipe) tqdm would print nothing; there a
bar becomes one plain line on stderr every ``LOG_EVERY`` seconds, so a 30-minute teacher fit shows
that it is alive and how far it got.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

LOG_EVERY = 30.0
"""Seconds between progress lines when stderr is not a terminal."""


class _Lines:
    """A stream for tqdm that turns its carriage-return redraws into whole lines."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        for line in text.replace("\r", "\n").split("\n"):
            if line.strip():
                self.stream.write(line.strip() + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable: Any = None, *, enabled: bool = True, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)`` that also reports off a terminal; ``enabled=False`` silences it."""
    if not enabled:
        return tqdm(iterable, disable=True, **kwargs)
    stream = sys.stderr
    if stream.isatty():
        return tqdm(iterable, file=stream, **kwargs)
    for drawn_only in ("leave", "mininterval", "maxinterval"):
        kwargs.pop(drawn_only, None)
    return tqdm(iterable, file=_Lines(stream), mininterval=LOG_EVERY, maxinterval=LOG_EVERY, dynamic_ncols=False,
                ncols=100, leave=True, **kwargs)
