"""The paper profile runs: its real student (MobileCLIP-B, bf16 autocast) distils from an open_clip ViT
teacher's reinforcement through the stages every trial uses, at a tiny batch for two steps on CPU."""

import pytest
import torch

from tests.reinforce.conftest import SHARDS_SUITE
from workbench.config.resolve import resolve_recipe
from workbench.models.students import count_parameters, load_trained
from workbench.study.pipeline import run_trial_stages


@pytest.mark.slow
def test_the_paper_profile_distils_into_its_real_student(reinforce_root, reinforce_ws):
    recipe = resolve_recipe("clip", "paper", [("test", {
        "data.train": ["shards"], "data.max_train_samples": 16, "eval.suite": str(SHARDS_SUITE),
        "reinforce.teachers": ["micro-openclip"], "reinforce.zoo": str(reinforce_root / "zoo.yaml"),
        "reinforce.augmentations": 1, "reinforce.batch_size": 8,
        "train.steps": 2, "train.batch_size": 2, "train.warmup_steps": 1, "train.eval_every": 2,
        "train.checkpoint_every": 2, "train.log_every": 1, "train.threads": 2})])
    assert (recipe.model.name, recipe.train.precision, recipe.distill.lam) == ("MobileCLIP-B", "bf16", 1.0)

    outcome = run_trial_stages(recipe, reinforce_ws, progress=False)

    assert [s.stage for s in outcome.stages] == ["reinforce", "train", "eval"]
    history = (outcome.train_dir / "history.jsonl").read_text().splitlines()
    assert len(history) >= 2 and all('"train/gt/kd_image_to_text"' in line for line in history[:2])
    student = load_trained(outcome.train_dir / "model.pt")
    params = count_parameters(student.model)
    assert round(params["image"] / 1e6, 1) == 86.3 and round(params["text"] / 1e6, 1) == 63.4  # Tab. 8's B
    assert student.image_size == 224
    assert 0.0 <= outcome.metrics["avg"] <= 1.0 and torch.isfinite(torch.tensor(outcome.metrics["avg"]))
