"""Learning efficiency (MobileCLIP's headline): how many times fewer samples a method needs to reach the
reference row's score at the reference's largest budget.

For each row, its mean score at each budget (samples seen = steps × batch, from the runs' parameters) makes
a curve; the samples at which it first reaches the target are interpolated linearly in log-samples between
the two budgets around the crossing. ratio = reference's samples / row's samples to the target. A row that
never reaches the target within the budgets tried has no ratio (reported as "< budgets"); one that already
reaches it at its smallest budget has only a lower bound. The 95% interval comes from a bootstrap over seeds:
every cell's seeds are resampled with replacement, both rows' curves and the target redrawn, the ratio
recomputed; the interval is the 2.5th and 97.5th percentiles of the draws (a draw that never reaches the
target counts as ratio 0).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DRAWS = 2000
METHOD_NOTE = ("Learning efficiency: samples seen (steps × batch) at which each row's mean score first reaches "
               "the reference row's score at its largest budget, interpolated linearly in log-samples between "
               "budgets; ratio = the reference's samples ÷ the row's. 95% interval: percentiles of "
               f"{DRAWS} bootstrap draws over seeds (each cell's seeds resampled with replacement; a draw that "
               "never reaches the target counts as ratio 0). Rows that reach the target at their smallest budget "
               "have only a lower bound (≥).")


def samples_to_reach(samples: np.ndarray, scores: np.ndarray, target: float, maximize: bool) -> float:
    """Samples at which the curve (sorted by samples) first reaches ``target``; inf if it never does."""
    reached = scores >= target if maximize else scores <= target
    if not reached.any():
        return math.inf
    i = int(np.argmax(reached))
    if i == 0:
        return float(samples[0])
    low, high = np.log(samples[i - 1]), np.log(samples[i])
    fraction = (target - scores[i - 1]) / (scores[i] - scores[i - 1])
    return float(np.exp(low + fraction * (high - low)))


def efficiency(cells: dict[str, dict[float, np.ndarray]], reference: str, maximize: bool, seed: int = 0
               ) -> pd.DataFrame:
    """``cells``: row → samples seen → that cell's seed scores. One line per non-reference row."""
    rng = np.random.default_rng(seed)

    def curve(row: str, draw: bool) -> tuple[np.ndarray, np.ndarray]:
        budgets = sorted(cells[row])
        means = [rng.choice(cells[row][b], len(cells[row][b])).mean() if draw else cells[row][b].mean()
                 for b in budgets]
        return np.array(budgets, float), np.array(means)

    def ratio(row: str, draw: bool) -> tuple[float, float, float]:
        ref_samples, ref_scores = curve(reference, draw)
        target, full = ref_scores[-1], ref_samples[-1]
        samples, scores = curve(row, draw)
        reach = samples_to_reach(samples, scores, target, maximize)
        return target, reach, (full / reach if math.isfinite(reach) else 0.0)

    lines = []
    for row in (r for r in cells if r != reference):
        target, reach, value = ratio(row, draw=False)
        draws = np.array([ratio(row, draw=True)[2] for _ in range(DRAWS)])
        smallest = min(cells[row])
        lines.append({"row": row, "target": target, "reference_samples": max(cells[reference]),
                      "samples_to_target": reach, "ratio": value if math.isfinite(reach) else math.nan,
                      "ci_low": float(np.percentile(draws, 2.5)), "ci_high": float(np.percentile(draws, 97.5)),
                      "bound": "lower" if reach == smallest else ("not reached" if not math.isfinite(reach) else "")})
    return pd.DataFrame(lines)


def efficiency_cells(runs: pd.DataFrame, metric_column: str, row_of: pd.Series) -> dict[str, dict[float, np.ndarray]]:
    """Group finished runs into row → samples seen → seed scores (samples from the runs' parameters)."""
    samples = runs["params.train.steps"].astype(float) * runs["params.train.batch_size"].astype(float)
    cells: dict[str, dict[float, list[float]]] = {}
    for row, budget, value in zip(row_of, samples, runs[metric_column].astype(float)):
        if not math.isnan(value):
            cells.setdefault(row, {}).setdefault(budget, []).append(value)
    return {row: {b: np.array(v) for b, v in budgets.items()} for row, budgets in cells.items()}


def render(table: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, str]:
    """The printed table (one line per row against the reference) and its method note."""
    shown = pd.DataFrame({
        "row": table["row"],
        f"target {metric}": table["target"].map(lambda v: f"{v:.4f}"),
        "reference samples": table["reference_samples"].map(lambda v: f"{v:,.0f}"),
        "samples to target": [("–" if not math.isfinite(s) else f"{s:,.0f}") for s in table["samples_to_target"]],
        "× fewer samples": [("< budgets" if b == "not reached" else ("≥ " if b == "lower" else "") + f"{r:.2f}")
                            for r, b in zip(table["ratio"], table["bound"])],
        "95% interval": [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(table["ci_low"], table["ci_high"])]})
    return shown, METHOD_NOTE
