"""The stage cache says on stderr what it builds, so a run's log shows what it is doing."""

from workbench.study.cache import StageCache, log_stages_to_stderr


def test_a_build_is_announced_and_timed_and_a_hit_is_silent(tmp_path, capsys):
    log_stages_to_stderr()
    log_stages_to_stderr()  # idempotent: one line each, not two
    cache = StageCache(tmp_path)
    first = cache.get_or_build("teacher", "abc123", lambda out: (out / "x").write_text("1"))
    lines = capsys.readouterr().err.splitlines()
    assert not first.hit and len(lines) == 2
    assert lines[0].endswith("teacher abc123: building") and "teacher abc123: built in" in lines[1]
    assert cache.get_or_build("teacher", "abc123", lambda out: None).hit
    assert capsys.readouterr().err == ""
