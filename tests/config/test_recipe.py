"""Recipe resolution: `train.batch_scale` and `train.steps_scale` scale whatever batch and schedule the profile
gives, once."""

import pytest

from workbench.config.recipe import Recipe
from workbench.config.resolve import recipe_profiles, resolve_recipe


def schedule(recipe: Recipe) -> tuple[int, ...]:
    t = recipe.train
    return t.batch_size, t.steps, t.warmup_steps, t.eval_every, t.checkpoint_every, t.log_every


@pytest.mark.parametrize("profile", recipe_profiles())
def test_batch_scale_halves_the_profiles_batch_and_doubles_its_schedule(profile):
    full = resolve_recipe("clip", profile, [])
    half = resolve_recipe("clip", profile, [("axis", {"train.batch_scale": 0.5}), ("seed", {"seed": 1})])
    b, steps, warmup, every, checkpoint, log = schedule(full)
    assert schedule(half) == (b // 2, 2 * steps, 2 * warmup, 2 * every, 2 * checkpoint, log)  # applied once
    assert half.train.batch_size * half.train.steps == full.train.batch_size * full.train.steps


def test_a_scaled_recipe_is_the_same_trial_as_its_spelled_out_twin():
    """Its identity (and so its cached training) is that of the recipe with the scaled values written out."""
    scaled = resolve_recipe("clip", "micro", [("set", {"train.batch_scale": 2})])
    spelled = resolve_recipe("clip", "micro", [("set", {"train.batch_size": 256, "train.steps": 500,
                                                        "train.warmup_steps": 50, "train.eval_every": 250,
                                                        "train.checkpoint_every": 125})])
    assert scaled.train.batch_scale == 1.0
    assert scaled.identity() == spelled.identity()


@pytest.mark.parametrize("profile", recipe_profiles())
def test_steps_scale_shortens_the_profiles_budget_at_its_batch(profile):
    full = resolve_recipe("clip", profile, [])
    short = resolve_recipe("clip", profile, [("set", {"train.steps_scale": 0.5})])
    b, steps, warmup, every, checkpoint, log = schedule(full)
    assert schedule(short) == (b, round(steps / 2), round(warmup / 2), every, checkpoint, log)


def test_steps_scale_rounds_half_up_and_applies_before_batch_scale():
    """The spelled-out twins are the recipes the shipped studies pinned before they said it relatively."""
    eighth = resolve_recipe("clip", "micro", [("axis", {"train.steps_scale": 0.125})])
    spelled = resolve_recipe("clip", "micro", [("axis", {"train.steps": 125, "train.warmup_steps": 13})])
    assert eighth.identity() == spelled.identity()
    both = resolve_recipe("clip", "micro", [("set", {"train.steps_scale": 0.3, "train.batch_scale": 0.5})])
    assert (both.train.batch_size, both.train.steps, both.train.warmup_steps) == (64, 600, 60)
    assert both.train.steps_scale == 1.0 and both.train.batch_scale == 1.0
