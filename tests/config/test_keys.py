"""Stage keys hash dumps of configs: a field added with a default must not move the keys of results
cached before it existed (or it must come with a stage version bump)."""

from workbench.captioners.spec import CaptionerFit
from workbench.config.recipe import AugmentConfig, Recipe
from workbench.stages.cache import stage_key


def test_defaults_dump_as_they_did():
    assert set(AugmentConfig().model_dump()) == {"crop_scale", "crop_ratio", "flip", "enabled"}
    assert "policy" in AugmentConfig(policy="strong").model_dump()
    identity = Recipe().identity()
    assert set(identity) == {"seed", "data", "model", "augment", "train", "eval"}
    assert not {"accumulate", "ema"} & set(identity["train"])


def test_pinned_keys_of_default_configs():
    """If this fails, a change moved every cached key: leave unset new fields out of dumps instead."""
    assert stage_key("train", 1, Recipe().identity()) == "8e5b8936a304fc22"
    assert stage_key("captioner", 1, CaptionerFit().model_dump(mode="json")) == "554621dcb26f0f77"
