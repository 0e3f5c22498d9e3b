"""The students' table: each device's timings become columns of one table, and a study whose axis is the
student plots its accuracy against their latency."""

import json
from dataclasses import asdict

import pandas as pd

from workbench.config.study import Study
from workbench.models.latency import StudentCost, Timing
from workbench.report.build import attach_latency
from workbench.report.formats import write_report
from workbench.report.students import fused_latency, record, render
from workbench.report.table import build_table


def cost(name: str, ms: float) -> dict:
    timing = asdict(Timing(ms, ms - 1, ms + 1))
    return asdict(StudentCost(name, 256, 11_400_000, 63_400_000, timing, timing, timing, timing, 3, 1e-7))


def test_another_device_adds_columns_and_keeps_the_first(tmp_path):
    store = tmp_path / "students.json"
    record(store, "cpu A", [cost("MobileCLIP2-S0", 200.0), cost("micro-vit-xs", 5.0)], "cmd 1")
    data = record(store, "gpu B", [cost("MobileCLIP2-S0", 3.0)], "cmd 2")
    assert json.loads(store.read_text()) == data and list(data["devices"]) == ["cpu A", "gpu B"]
    table = render(data)
    row = next(line for line in table.splitlines() if line.startswith("| `MobileCLIP2-S0`"))
    assert "200.0 (199.0–201.0)" in row and "3.0 (2.0–4.0)" in row and "11.4 + 63.4" in row
    micro = next(line for line in table.splitlines() if line.startswith("| `micro-vit-xs`"))
    assert micro.count("| – ") >= 4 + 2  # not timed on gpu B; not in the paper
    assert "[1] cpu A: `cmd 1`" in table and "[2] gpu B: `cmd 2`" in table


def test_a_study_over_students_plots_accuracy_against_their_latency(tmp_path):
    store = tmp_path / "students.json"
    record(store, "cpu A", [cost("micro-vit-xs", 5.0), cost("micro-vit-s", 20.0)], "cmd")
    assert fused_latency(store) == ("cpu A", {"micro-vit-xs": 10.0, "micro-vit-s": 40.0})  # image + text, fused
    study = Study.model_validate({
        "study": "s", "seeds": 2, "axes": {"student": {"key": "model.name", "values": ["micro-vit-xs", "micro-vit-s"],
                                                       "labels": ["xs", "s"]}},
        "table": {"rows": "student", "metrics": ["avg"]}})
    runs = pd.DataFrame([{"tags.workbench.axis.student": label, "tags.workbench.seed": str(seed),
                          "tags.workbench.point_id": f"{label}{seed}", "run_id": f"r{label}{seed}", "start_time": 0,
                          "metrics.eval/avg": 0.1 + 0.05 * (label == "s") + 0.01 * seed, "metrics.chance/avg": 0.05}
                         for label in ("xs", "s") for seed in (0, 1)])
    table = build_table(study, runs, "Students")
    assert attach_latency(study, table, store) == "cpu A"
    assert dict(zip(table.cells["student"], table.cells["latency_ms"])) == {"xs": 10.0, "s": 40.0}
    assert tmp_path / "out" / "s-latency.png" in write_report(table, tmp_path / "out", "s")
    assert attach_latency(study, build_table(study, runs, "Students"), tmp_path / "none.json") == ""  # not timed
