"""The augmentation policy schema: presets, descriptions, and reading it without torch."""

import subprocess
import sys
from pathlib import Path

import pytest

from workbench.config.augment import PRESETS, AugmentPolicy, describe, resolve_policy

ROOT = Path(__file__).parents[2]


def test_presets_resolve_by_name_and_a_policy_resolves_to_itself():
    assert resolve_policy("strong") is PRESETS["strong"]
    custom = AugmentPolicy(flip=0.5)
    assert resolve_policy(custom) is custom
    with pytest.raises(KeyError, match="weak, strong, datacompdr"):
        resolve_policy("wild")


def test_describe_names_a_preset_or_the_fields_a_policy_sets():
    assert describe("weak") == "weak"
    assert describe(AugmentPolicy()) == "default policy"
    assert describe(AugmentPolicy(flip=0.5, erase_p=0.25)) == "flip 0.5, erase_p 0.25"


def test_stages_follow_the_fields_that_are_on():
    assert PRESETS["weak"].stages == ["random_resized_crop"]
    assert PRESETS["strong"].stages == ["random_resized_crop", "rand_augment", "range_augment", "random_erase"]


def test_the_ops_module_applies_the_same_schema():
    from workbench.augment import policy

    assert policy.AugmentPolicy is AugmentPolicy and policy.PRESETS is PRESETS
    assert policy.describe is describe and policy.resolve_policy is resolve_policy


def test_reading_configs_imports_no_torch():
    code = ("import sys, workbench.config.augment, workbench.config.recipe, workbench.config.study, "
            "workbench.config.resolve; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'torchvision', 'open_clip', 'mlflow', 'optuna'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
