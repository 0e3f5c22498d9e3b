"""The cost ledger under a table: what its runs took, upstream stages shared out among the runs using them.

Each run's ``cost.json`` (``workbench.stages.ledger``) lists its own training and eval and every upstream
artifact (reinforcement, caption sets, captioner and teacher fits, feature caches) with the wall and CPU
seconds and bytes that artifact recorded when it was built. An upstream artifact used by k runs of the
table is charged 1/k to each, so the cells add up to the table's total and nothing is counted twice.
"""

from __future__ import annotations

import pandas as pd

WALL, CPU, SAMPLES = "cost.wall_seconds", "cost.cpu_seconds", "cost.samples_seen"
"""Per-run columns: own stages plus the run's share of the upstream ones."""


def amortise(costs: dict[str, dict | None]) -> tuple[pd.DataFrame, list[str]]:
    """``run_id`` → ledger (None when the run logged none): per-run cost columns and the summary lines."""
    users: dict[str, int] = {}
    for ledger in filter(None, costs.values()):
        for ref in ledger["upstream"]:
            users[ref] = users.get(ref, 0) + 1
    rows, upstream, unrecorded = [], {}, set()
    own = {"train": [0.0, 0.0], "eval": [0.0, 0.0]}
    samples = 0.0
    for run_id, ledger in costs.items():
        if ledger is None:
            rows.append({"run_id": run_id})
            continue
        wall = cpu = 0.0
        for stage, record in ledger["own"].items():
            if record is None:
                unrecorded.add(f"{stage} of run {run_id[:8]}")
                continue
            wall, cpu = wall + record["wall_seconds"], cpu + record["cpu_seconds"]
            own.setdefault(stage, [0.0, 0.0])
            own[stage][0] += record["wall_seconds"]
            own[stage][1] += record["cpu_seconds"]
        for ref, record in ledger["upstream"].items():
            if record is None:
                unrecorded.add(ref)
                continue
            upstream[ref] = record
            wall, cpu = wall + record["wall_seconds"] / users[ref], cpu + record["cpu_seconds"] / users[ref]
        seen = float(ledger.get("samples_seen", 0.0))
        samples += seen
        rows.append({"run_id": run_id, WALL: wall, CPU: cpu, SAMPLES: seen})
    logged = sum(ledger is not None for ledger in costs.values())
    if not logged:
        return pd.DataFrame(rows), ["No run logged a cost ledger (runs made before costs were recorded)."]
    by_stage: dict[str, list[float]] = {}
    for ref, record in upstream.items():
        stage = ref.split("/", 1)[0]
        by_stage.setdefault(stage, [0.0, 0.0, 0])
        by_stage[stage][0] += record["wall_seconds"]
        by_stage[stage][1] += record["cpu_seconds"]
        by_stage[stage][2] += 1
    reinforced = sum(r["bytes"] for ref, r in upstream.items() if ref.startswith("reinforce/"))
    lines = [f"{logged} of {len(costs)} runs logged a ledger; {samples:,.0f} samples seen in training.",
             "Own stages, wall / CPU: " + "; ".join(f"{stage} {_hours(w)} / {_hours(c)}"
                                                    for stage, (w, c) in own.items() if w or c) + "."]
    if by_stage:
        lines.append("Upstream stages, each counted once and charged in equal shares to the runs using it, "
                     "wall / CPU: " + "; ".join(f"{stage} ×{n} {_hours(w)} / {_hours(c)}"
                                                for stage, (w, c, n) in sorted(by_stage.items())) + ".")
    if reinforced:
        lines.append(f"Reinforced data the runs train on: {reinforced / 2**20:.1f} MiB.")
    total_wall = sum(w for w, _ in own.values()) + sum(v[0] for v in by_stage.values())
    total_cpu = sum(c for _, c in own.values()) + sum(v[1] for v in by_stage.values())
    lines.append(f"Total: {_hours(total_wall)} wall, {_hours(total_cpu)} CPU, as recorded on the machines that "
                 "built each artifact; a cell's share is in the CSV (cost_wall_seconds, cost_cpu_seconds).")
    if unrecorded:
        lines.append(f"Not counted: {len(unrecorded)} artifact(s) built before costs were recorded "
                     f"({', '.join(sorted(unrecorded)[:4])}{', …' if len(unrecorded) > 4 else ''}).")
    return pd.DataFrame(rows), lines


def _hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"
