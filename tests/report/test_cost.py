"""The cost ledger under a table: shared upstream stages are charged in equal shares, counted once."""

import pytest

from workbench.report.cost import CPU, SAMPLES, WALL, amortise


def ledger(train_wall, upstream):
    record = lambda wall: {"wall_seconds": wall, "cpu_seconds": 2 * wall, "bytes": 1 << 20, "uses": []}  # noqa: E731
    return {"own": {"train": record(train_wall), "eval": record(1.0)},
            "upstream": {ref: record(wall) for ref, wall in upstream.items()}, "samples_seen": 1000}


def test_shared_stages_are_split_among_their_users_and_counted_once():
    costs = {"a": ledger(10.0, {"reinforce/r": 60.0, "teacher/t": 300.0}),
             "b": ledger(20.0, {"reinforce/r": 60.0, "teacher/t": 300.0}),
             "c": ledger(30.0, {"teacher/t": 300.0}),
             "old": None}
    per_run, lines = amortise(costs)
    per_run = per_run.set_index("run_id")
    assert per_run.loc["a", WALL] == pytest.approx(10 + 1 + 60 / 2 + 300 / 3)
    assert per_run.loc["c", CPU] == pytest.approx(2 * (30 + 1 + 300 / 3))
    assert per_run[WALL].sum() == pytest.approx(10 + 20 + 30 + 3 + 60 + 300)  # the cells add up to the total
    assert per_run.loc["a", SAMPLES] == 1000
    text = "\n".join(lines)
    assert "3 of 4 runs logged a ledger" in text and "teacher ×1 5.0 min / 10.0 min" in text
    assert "Reinforced data the runs train on: 1.0 MiB." in text


def test_no_ledgers_says_so():
    _, lines = amortise({"a": None})
    assert lines == ["No run logged a cost ledger (runs made before costs were recorded)."]
