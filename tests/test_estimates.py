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


def test_a_gpu_training_is_priced_in_gpu_hours_from_its_counted_flops():
    cpu = Recipe.model_validate({"model": {"name": "micro-vit-xs"}})
    gpu = Recipe.model_validate({"model": {"name": "micro-vit-xs"},
                                 "train": {"precision": "bf16", "steps": 1000, "batch_size": 100}})
    assert not estimates.is_gpu_training(cpu) and estimates.is_gpu_training(gpu)
    flops = estimates.training_flops_per_sample("micro-vit-xs")
    assert 0 < flops < estimates.training_flops_per_sample("micro-vit-s")  # the wider student costs more
    rate = estimates.GPU_BF16_FLOPS * estimates.ASSUMED_UTILISATION
    assert estimates.gpu_hours(gpu) == pytest.approx(1000 * 100 * flops / rate / 3600)


def test_synthetic_captions_cost_only_when_a_trial_reads_some():
    stored = {"teachers": ["t"], "captioners": ["c"], "captions": 2}
    ground_truth = seconds(reinforce=stored, distill={"synthetic_captions": 0})
    synthetic = seconds(reinforce=stored, distill={"synthetic_captions": 2})
    assert synthetic / ground_truth == pytest.approx(estimates.SYNTHETIC_CAPTION_SLOWDOWN, rel=0.2)
    assert seconds(reinforce=stored, distill={"synthetic_weight": 0.0}) == pytest.approx(ground_truth)
