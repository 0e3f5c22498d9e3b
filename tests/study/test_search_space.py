"""A list-valued key searched element by element: Optuna sees KEY.0, KEY.1, the recipe gets the list, the
report reads the elements back."""

import optuna
import pandas as pd

from workbench.config.study import Study
from workbench.report.search import _searched_value, searched
from workbench.study.orchestrate import _suggest

STUDY = Study.model_validate({
    "study": "s", "seeds": 2,
    "set": {"data.train": ["clipart-web"], "reinforce.teachers": ["lite0-minilm", "lite1-minilm"]},
    "search": {"trials": 2, "space": {"distill.logit_scales": {"each": [{"float": [10, 100]}, {"float": [20, 30]}]},
                                       "train.lr": {"float": [1.0e-4, 1.0e-3], "log": True}}}})


def test_each_element_is_its_own_optuna_parameter_and_the_recipe_gets_the_list():
    trial = optuna.create_study().ask()
    specs = _suggest(trial, STUDY, "s.yaml", "smoke")
    assert set(trial.params) == {"distill.logit_scales.0", "distill.logit_scales.1", "train.lr"}
    assert [s.seed for s in specs] == [0, 1]  # a search trial trains its point at every seed
    scales = specs[0].recipe.distill.logit_scales
    assert scales == [trial.params["distill.logit_scales.0"], trial.params["distill.logit_scales.1"]]
    assert 20 <= scales[1] <= 30


def test_the_report_reads_each_element_back_from_the_logged_list():
    dims = searched(STUDY)
    assert list(dims) == ["distill.logit_scales.0", "distill.logit_scales.1", "train.lr"]
    run = pd.Series({"params.distill.logit_scales": "[55.5, 25.0]", "params.train.lr": "0.0003"})
    assert _searched_value(run, "distill.logit_scales.1", 1) == 25.0
    assert _searched_value(run, "train.lr", None) == 0.0003
