"""What a result cost: its own stages' records and, walked through each artifact's ``uses``, everything
upstream of them (reinforcements, caption sets, captioner and teacher fits, feature caches).

Costs are those each artifact recorded when it was built (``stage_cost.json``, on the machine that built
it), so a trial that reuses a cached training still reports what that training took. Artifacts built
before costs were recorded appear with ``None``.
"""

from __future__ import annotations

from pathlib import Path

from workbench.stages.cache import read_cost

COST_ARTIFACT = "cost.json"
"""The MLflow artifact of each trial run holding ``trial_cost`` (less its metrics, logged as metrics)."""


def closure(cache_root: Path, stages: list[tuple[str, str]]) -> dict[str, dict | None]:
    """``stage/key`` → cost record for ``stages`` and every artifact they used, transitively."""
    seen: dict[str, dict | None] = {}
    todo = [f"{stage}/{key}" for stage, key in stages]
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        stage, key = ref.split("/", 1)
        seen[ref] = read_cost(Path(cache_root) / stage / key)
        todo.extend(seen[ref]["uses"] if seen[ref] else [])
    return seen


def trial_cost(cache_root: Path, own: dict[str, str], upstream: list[tuple[str, str]], samples_seen: int) -> dict:
    """A trial's ledger: ``own`` (stage → key of the trial's own train and eval), every upstream artifact
    with its record, and the metrics the trial logs (``cost/...``)."""
    records = closure(cache_root, [*own.items(), *upstream])
    mine = {stage: records.get(f"{stage}/{key}") for stage, key in own.items()}
    shared = {ref: record for ref, record in records.items() if ref not in {f"{s}/{k}" for s, k in own.items()}}
    metrics = {"cost/samples_seen": float(samples_seen),
               "cost/reinforced_bytes": float(sum(r["bytes"] for ref, r in shared.items()
                                                  if r and ref.startswith("reinforce/")))}
    for stage, record in mine.items():
        if record:
            metrics[f"cost/{stage}_wall_seconds"] = record["wall_seconds"]
            metrics[f"cost/{stage}_cpu_seconds"] = record["cpu_seconds"]
    return {"own": mine, "upstream": shared, "samples_seen": samples_seen, "metrics": metrics}
