"""Verdicts: is a row better than its control, given both seed noise and eval-item noise?

A row's cell is the mean of a few seeds, each scored on one fixed eval set. Two noises separate two rows:

- seeds: estimated by the spread of the seed values, s² / n, shrinking with more seeds;
- eval items: the suite's binomial standard error of each score. Every seed of a row scores the same items,
  so this part does not shrink with n; it is added once, as the row's mean item standard error squared.

The difference of means gets a Welch t interval with each side's variance s²/n + se², and Welch–Satterthwaite
degrees of freedom in which only the seed terms are estimated (an item standard error comes from hundreds of
items, so it counts as known). The two rows' item noises are added as if independent; they score the same
items, so their errors are positively correlated and the interval is, if anything, too wide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

HEADLINE_SEEDS = 5
"""Seeds each side of a headline comparison needs."""
BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"
TOO_FEW = "needs ≥ 2 seeds a side"
"""No interval: with one seed a row's seed variance is unknown."""

METHOD_NOTE = (
    "Verdicts: difference of means (row − reference) with a 95% Welch t interval; each side's variance is "
    "s²/n over its seeds plus its mean item standard error squared (eval-item noise, shared by every seed "
    "of a row since all score the same items, so it does not shrink with n); Welch–Satterthwaite degrees of "
    "freedom over the seed terms (item errors are known from hundreds of items). The item noises of the two "
    "rows are added as if independent (conservative: both score the same items). `better` / `worse`: the "
    "interval excludes 0; otherwise `no detectable difference`. One interval per comparison, not corrected "
    "for the number of comparisons.")


@dataclass(frozen=True)
class Comparison:
    diff: float
    """Mean of the row minus mean of the reference."""
    low: float
    high: float
    df: float
    """Welch–Satterthwaite degrees of freedom (inf when neither side's seeds vary)."""
    verdict: str


def compare(values: np.ndarray | list[float], item_se: float, ref_values: np.ndarray | list[float],
            ref_item_se: float, higher_is_better: bool = True, level: float = 0.95) -> Comparison:
    """A row's seed values and mean item standard error against the reference's."""
    row, ref = np.asarray(values, dtype=float), np.asarray(ref_values, dtype=float)
    diff = float(row.mean() - ref.mean()) if row.size and ref.size else math.nan
    if row.size < 2 or ref.size < 2:
        return Comparison(diff, math.nan, math.nan, math.nan, TOO_FEW)
    seed_row, seed_ref = row.var(ddof=1) / row.size, ref.var(ddof=1) / ref.size
    variance = seed_row + seed_ref + item_se ** 2 + ref_item_se ** 2
    spread = seed_row ** 2 / (row.size - 1) + seed_ref ** 2 / (ref.size - 1)
    df = variance ** 2 / spread if spread > 0 else math.inf  # Satterthwaite: known terms add no uncertainty
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(variance)
    low, high = diff - half, diff + half
    if low > 0:
        verdict = BETTER if higher_is_better else WORSE
    elif high < 0:
        verdict = WORSE if higher_is_better else BETTER
    else:
        verdict = NO_DIFFERENCE
    return Comparison(diff, low, high, df, verdict)
