"""The stage cache says on stderr what it builds, so a run's log shows what it is doing."""

from workbench.stages.cache import StageCache, building, log_stages_to_stderr


def test_a_build_is_announced_and_timed_and_a_hit_in_one_line(tmp_path, capsys):
    log_stages_to_stderr()
    log_stages_to_stderr()  # idempotent: one line each, not two
    cache = StageCache(tmp_path)
    first = cache.get_or_build("teacher", "abc123", lambda out: (out / "x").write_text("1"))
    lines = capsys.readouterr().err.splitlines()
    assert not first.hit and len(lines) == 2
    assert lines[0].endswith("teacher abc123: building") and "teacher abc123: built in" in lines[1]
    assert cache.get_or_build("teacher", "abc123", lambda out: None).hit
    assert capsys.readouterr().err.strip().endswith("teacher abc123: cache hit")


def test_a_stage_that_works_before_its_commit_is_announced_once_and_timed_whole(tmp_path, capsys):
    """Reinforcement writes resumable shards before the cache commits them: the line says when the shards
    began and the time counts them, not just the commit."""
    log_stages_to_stderr()
    started = building("reinforce", "k1") - 100  # as if its shards took 100 s
    StageCache(tmp_path).get_or_build("reinforce", "k1", lambda out: (out / "x").write_text("1"), started)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].endswith("reinforce k1: building")
    assert "reinforce k1: built in 100 s" in lines[1]
