"""Plan estimates: each measured slowdown applies to the trials that pay it, and to no other."""

import pytest

from workbench import estimates
from workbench.config.recipe import Recipe


def seconds(**fields) -> float:
    return estimates.training_seconds(Recipe.model_validate(fields))


def test_randaugment_costs_where_images_pass_through_it_online_or_stored():
    crops = seconds(augment={"enabled": True})
    online = seconds(augment={"enabled": True, "policy": "strong"})
    assert online > crops
    assert seconds(augment={"enabled": False, "policy": "strong"}) < online  # a disabled policy draws nothing
    stored_crops = seconds(reinforce={"teachers": ["t"], "augment": {"crop_scale": [0.9, 1.0]}})
    stored_strong = seconds(reinforce={"teachers": ["t"], "augment": "strong"})
    assert stored_strong / stored_crops == pytest.approx(estimates.RANDAUGMENT_SLOWDOWN, rel=0.2)
