"""Pinned: a seeded smoke trial's stage keys and metrics.

Moving code between modules must change neither what a stage is keyed on nor what a trial computes;
a key or a metric that moves here means results already in a workspace would be rebuilt or differ. The
pins were taken on the code before the stage kernel existed (4c07a5f) and hold after it.
"""

from pathlib import Path

import pytest

from workbench.config.resolve import resolve_recipe
from workbench.study.pipeline import run_trial_stages


def test_a_seeded_smoke_trial_keeps_its_keys_and_numbers(shapes_ws, monkeypatch):
    monkeypatch.chdir(Path(__file__).parents[1])  # the suite's path is part of the recipe: the same in any clone
    recipe = resolve_recipe("clip", "smoke", [("test", {
        "data.train": ["shapes"], "data.max_train_samples": 96, "eval.suite": "suites/shapes.yaml", "train.steps": 6,
        "train.eval_every": 3, "seed": 0})])
    outcome = run_trial_stages(recipe, shapes_ws, progress=False)
    assert outcome.stage_keys == {"train": "b456c8f15db52fa1", "eval": "a4a5d17fb4f54d5f"}
    assert outcome.metrics == pytest.approx(METRICS, rel=1e-6)


METRICS = {"zs_shapes/balanced_acc": 0.5909090909090909, "zs_shapes/top1": 0.5833333333333334,
           "ret_shapes/r1": 0.08928571428571427, "ret_shapes/r5": 0.4464285714285714,
           "ret_shapes/r10": 0.5892857142857143, "ret_shapes/i2t_r1": 0.10714285714285714,
           "ret_shapes/i2t_r5": 0.42857142857142855, "ret_shapes/i2t_r10": 0.5357142857142857,
           "ret_shapes/t2i_r1": 0.07142857142857142, "ret_shapes/t2i_r5": 0.4642857142857143,
           "ret_shapes/t2i_r10": 0.6428571428571429, "zeroshot": 0.5909090909090909,
           "retrieval": 0.08928571428571427, "avg": 0.5186688311688312}
