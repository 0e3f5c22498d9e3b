"""What made a table's runs: git commit, packages, commands, training-data fingerprints and torch threads.

Each is read from the runs themselves (tags, parameters, the training summary), never assumed; where the
runs disagree (two commits, two thread counts) the report says so, run counts included.
"""

from __future__ import annotations

import pandas as pd

from workbench.tracking.mlflow_store import TAG_PREFIX

COMMIT_TAG = f"tags.{TAG_PREFIX}git_commit"
PACKAGES_TAG = f"tags.{TAG_PREFIX}packages"
DATA_TAG = f"tags.{TAG_PREFIX}data."
PARENT_TAG = "tags.mlflow.parentRunId"
THREADS = "threads"
"""Column of ``runs`` with each run's torch thread count, as its training summary recorded it."""


def agreement(values: pd.Series, fmt=str, runs: str = "runs") -> str:
    """``v (all N runs)``, or every distinct value with its run count when the runs disagree."""
    counts = values.map(lambda v: "not recorded" if pd.isna(v) or v == "" else fmt(v)).value_counts(sort=True)
    if len(counts) == 1:
        return f"{counts.index[0]} (all {counts.iloc[0]} {runs})"
    return "**the runs disagree**: " + ", ".join(f"{value} ({count} run{'s' if count > 1 else ''})"
                                                 for value, count in counts.items())


LAYOUT_GUARANTEES = {
    2: "content-level splits: images with the same decoded pixels (and, but in glyphs, the same 64-bit "
       "dHash) share one split group, so no held-out image is a training image; `workbench data check` "
       "verifies it on the built data",
}
"""What each data layout version guarantees about its splits (versions not listed guarantee nothing)."""


def provenance(runs: pd.DataFrame, run_command: str, report_command: str,
               layouts: dict[str, int] | None = None) -> list[str]:
    """Markdown lines for the report's provenance section. ``layouts`` maps a dataset fingerprint to the
    data layout version of the built dataset that has it (the workspace's)."""
    column = lambda name: runs[name] if name in runs else pd.Series(pd.NA, index=runs.index)  # noqa: E731
    invocations = column(PARENT_TAG).dropna().nunique()
    lines = [f"Runs made by `{run_command}`"
             + (f" ({invocations} invocation{'s' if invocations != 1 else ''} of it)" if invocations else "")
             + f"; rendered by `{report_command}`.",
             f"Git commit of the runs: {agreement(column(COMMIT_TAG), lambda c: f'`{c}`')}.",
             f"Packages of the runs: {agreement(column(PACKAGES_TAG))}."]
    datasets = sorted(c.removeprefix(DATA_TAG) for c in runs if c.startswith(DATA_TAG))
    if datasets:
        lines.append("Training data fingerprints: " + "; ".join(
            f"{name} {agreement(runs[DATA_TAG + name].dropna(), lambda f: f'`{f}`', 'runs training on it')}"
            for name in datasets) + ".")
        lines.append(_layout_line(runs, datasets, layouts or {}))
    else:
        lines.append("Training data fingerprints: not recorded by these runs.")
    lines.append("Torch threads of training and eval: " + agreement(column(THREADS), lambda t: str(int(t))) + ".")
    return lines


def _layout_line(runs: pd.DataFrame, datasets: list[str], layouts: dict[str, int]) -> str:
    fingerprints = {f for name in datasets for f in runs[DATA_TAG + name].dropna()}
    versions = {layouts.get(f) for f in fingerprints}
    if versions == {None}:
        return "Data layout: unknown (no built dataset in this workspace has these fingerprints)."
    named = ", ".join(f"v{v}" if v is not None else "unknown (not built here)"
                      for v in sorted(versions, key=lambda v: (v is None, v or 0)))
    guarantee = LAYOUT_GUARANTEES.get(next(iter(versions))) if len(versions) == 1 else None
    return f"Data layout: {named}" + (f" — {guarantee}." if guarantee else
                                      "; splits without the content-level guarantee of layout v2.")
