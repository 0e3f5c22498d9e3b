"""Every built artifact records its own cost and what it used; a trial's ledger walks them all."""

import time

from workbench.stages.cache import COST_FILE, StageCache, read_cost
from workbench.stages.ledger import closure, trial_cost


def busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_build_records_its_own_cost_net_of_nested_builds_and_what_it_used(tmp_path):
    cache = StageCache(tmp_path)
    cache.get_or_build("features", "f1", lambda out: (out / "x.npy").write_bytes(b"1" * 100))  # built before

    def teacher(out):
        cache.get_or_build("features", "f1", lambda o: None)              # a hit: used, costs nothing here
        cache.get_or_build("features", "f2", lambda o: busy(0.3))           # built inside: its own record
        busy(0.2)
        (out / "model.pt").write_bytes(b"w" * 1000)

    result = cache.get_or_build("teacher", "t1", teacher)
    record, nested = read_cost(result.path), read_cost(cache.path("features", "f2"))
    assert record["uses"] == ["features/f1", "features/f2"] and record["bytes"] == 1000
    assert 0.15 < record["cpu_seconds"] < 0.29  # the nested 0.3 s is the feature cache's, not the teacher's
    assert nested["cpu_seconds"] >= 0.29 and nested["uses"] == []
    assert (result.path / COST_FILE).is_file() and not record["resumed"]


def test_a_trial_ledger_walks_every_upstream_artifact_once(tmp_path):
    cache = StageCache(tmp_path)
    cache.get_or_build("features", "f", lambda out: None)
    cache.get_or_build("teacher", "t", lambda out: cache.get_or_build("features", "f", lambda o: None))
    cache.get_or_build("reinforce", "r", lambda out: (cache.get_or_build("teacher", "t", lambda o: None),
                                                      (out / "shard.tar").write_bytes(b"s" * 2048)))
    cache.get_or_build("train", "tr", lambda out: None)
    cache.get_or_build("eval", "ev", lambda out: None)
    assert set(closure(tmp_path, [("reinforce", "r")])) == {"reinforce/r", "teacher/t", "features/f"}
    ledger = trial_cost(tmp_path, {"train": "tr", "eval": "ev"}, [("reinforce", "r")], samples_seen=640)
    assert set(ledger["upstream"]) == {"reinforce/r", "teacher/t", "features/f"}
    assert set(ledger["own"]) == {"train", "eval"}
    assert ledger["metrics"]["cost/samples_seen"] == 640 and ledger["metrics"]["cost/reinforced_bytes"] >= 2048
    assert "cost/train_wall_seconds" in ledger["metrics"]


def test_an_artifact_from_before_cost_records_is_none(tmp_path):
    (tmp_path / "teacher" / "old").mkdir(parents=True)
    assert closure(tmp_path, [("teacher", "old")]) == {"teacher/old": None}
