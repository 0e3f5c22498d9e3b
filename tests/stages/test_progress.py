"""Long work reports progress off a terminal too: whole lines, not carriage-return redraws."""

import io

from workbench.stages import progress


def test_off_a_terminal_progress_is_whole_lines(monkeypatch):
    stream = io.StringIO()  # not a tty
    monkeypatch.setattr(progress.sys, "stderr", stream)
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)
    for _ in progress.progress_bar(range(5), desc="fit"):
        pass
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and lines and all(line.startswith("fit") for line in lines)
    assert "5/5" in lines[-1]


def test_disabled_progress_prints_nothing(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(progress.sys, "stderr", stream)
    assert list(progress.progress_bar(range(3), desc="fit", enabled=False)) == [0, 1, 2]
    assert stream.getvalue() == ""
