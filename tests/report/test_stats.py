"""Verdicts on hand-made numbers: Welch's interval with seed and eval-item noise."""

import math

import numpy as np
import pytest
from scipy import stats

from workbench.report.stats import BETTER, NO_DIFFERENCE, TOO_FEW, WORSE, compare

ROW = [0.120, 0.125, 0.118, 0.122, 0.121]
CONTROL = [0.100, 0.104, 0.098, 0.101, 0.102]


def test_clearly_different_rows_are_better_or_worse():
    better = compare(ROW, 0.002, CONTROL, 0.002)
    assert better.verdict == BETTER and better.diff == pytest.approx(0.0202) and 0 < better.low < better.high
    assert compare(CONTROL, 0.002, ROW, 0.002).verdict == WORSE
    assert compare(ROW, 0.002, CONTROL, 0.002, higher_is_better=False).verdict == WORSE


def test_identical_rows_show_no_detectable_difference():
    same = compare(CONTROL, 0.002, CONTROL, 0.002)
    assert same.verdict == NO_DIFFERENCE and same.diff == 0 and same.low < 0 < same.high


def test_without_item_noise_it_is_welchs_t_interval():
    result = compare(ROW[:3], 0.0, CONTROL, 0.0)
    welch = stats.ttest_ind(ROW[:3], CONTROL, equal_var=False).confidence_interval(0.95)
    assert (result.low, result.high) == pytest.approx((welch.low, welch.high))


def test_item_noise_can_hide_a_gap_the_seeds_alone_would_show():
    tight, shifted = [0.100, 0.101, 0.100, 0.101, 0.100], [0.106, 0.107, 0.106, 0.107, 0.106]
    assert compare(shifted, 0.0, tight, 0.0).verdict == BETTER
    noisy = compare(shifted, 0.004, tight, 0.004)  # eval sets of a few hundred items
    assert noisy.verdict == NO_DIFFERENCE and noisy.df > 1e3  # known item noise barely costs a t quantile


def test_the_interval_narrows_with_seeds_down_to_the_item_noise():
    widths = []
    for n in (3, 6, 21, 201):  # the same seed spread, more seeds
        spread = 0.005 * np.tile([-1.0, 0.0, 1.0], n // 3)
        result = compare(0.11 + spread, 0.003, 0.10 + spread, 0.003)
        widths.append(result.high - result.low)
    assert widths == sorted(widths, reverse=True)
    floor = 2 * stats.norm.ppf(0.975) * math.sqrt(2 * 0.003 ** 2)  # item noise does not shrink with seeds
    assert floor < widths[-1] < 1.2 * floor


def test_one_seed_gives_no_interval():
    result = compare([0.2], 0.001, CONTROL, 0.001)
    assert result.verdict == TOO_FEW and math.isnan(result.low) and result.diff == pytest.approx(0.099)
