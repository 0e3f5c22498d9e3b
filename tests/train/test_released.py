"""Training on released reinforced shards (``data.reinforced``): a fixture in Apple's layout, written member
by member from the documented field names, trains a student through the trial stages, and every batch
replays exactly the stored augmentation, on the shard's own image, with its stored teacher embeddings."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from tests.reinforce.test_datacompdr import K, write_released_shard
from workbench.augment.policy import apply, decompress
from workbench.config.errors import ConfigError
from workbench.config.resolve import resolve_recipe
from workbench.models.students import get_tokenizer
from workbench.study.pipeline import planned_train_key, released_distillation, run_trial_stages
from workbench.train.reinforced import ReinforcedStream, load_reinforced_set

TEACHERS = [{"name": "dfn-l14-s39b", "dim": 768, "logit_scale": 70.0}, {"name": "dfn-l14", "dim": 768, "logit_scale": 60.0}]


def released_recipe(shards: str, suite: str, **overrides):
    layer = {"data.reinforced": {"shards": [shards], "teachers": TEACHERS}, "data.max_train_samples": None,
             "eval.suite": suite, "train.steps": 4, "train.batch_size": 4, "train.eval_every": 4, **overrides}
    return resolve_recipe("clip", "smoke", [("test", layer)])


@pytest.fixture
def released(tmp_path):
    expected = write_released_shard(tmp_path / "00000000.tar", legacy=False)
    write_released_shard(tmp_path / "00000001.tar", legacy=False, samples=2)  # a second shard
    return tmp_path, expected


def test_a_batch_replays_the_stored_augmentation_on_the_shards_own_image(released, shapes_suite):
    folder, expected = released
    recipe = released_recipe(str(folder / "*.tar"), shapes_suite, **{"distill.teachers": ["dfn-l14"]})
    distilled = released_distillation(recipe)
    data = load_reinforced_set(recipe, distilled.dataset, None, 64, get_tokenizer(recipe.model.name), False)
    assert len(data) == 6 and data.augmentations == K and data.dims == [768] and data.teacher_scales == [60.0]
    assert data.syn_valid.shape == (6, 6) and data.syn_valid.sum(1).tolist() == [5] * 6  # coca 2 of 3 slots, docci 3

    stream = ReinforcedStream(data, recipe, 32)
    checked = 0
    for step in range(2):
        batch = stream.batch(step)
        checked += _check_batch(batch, folder, expected, data)
    assert checked >= 4


def _check_batch(batch, folder, expected, data) -> int:
    """Rows of ``batch`` from the first shard checked against what it stores."""
    checked = 0
    for row, index in enumerate(batch.indices.tolist()):
        if index >= len(expected):
            continue  # the second shard reuses the fixture's contents
        want = expected[index]
        original = torch.from_numpy(np.array(Image.open(io.BytesIO(_image(folder, index))).convert("RGB")))
        assert tuple(original.shape) == (240, 320, 3)  # at its own size: the crop boxes are in its pixels
        stored = [k for k in range(K) if decompress([want["paug"][k]], data.policy).crop.tolist()
                  == batch.params.rows([row]).crop.tolist()]
        assert stored, "the batch's crop is one the shard stored for this image"
        replay = apply(original[None], decompress([want["paug"][stored[0]]], data.policy), data.policy, 32, None, 224)
        assert torch.equal(batch.pixels[row], replay[0])
        teacher = torch.from_numpy(want["arrays"]["image_emb"][stored[0], 768:]).half().float()
        assert torch.equal(batch.teacher_image[row], teacher)  # the second teacher's block only
        assert batch.texts[row] == f"a photo number {index}"
        checked += 1
    return checked


def _image(folder, index: int) -> bytes:
    import tarfile

    with tarfile.open(folder / "00000000.tar") as tar:
        return tar.extractfile(f"{index:09d}.jpg").read()


def test_a_student_trains_on_released_shards_through_the_trial_stages(released, shapes_ws, shapes_suite):
    folder, _ = released
    recipe = released_recipe(str(folder / "*.tar"), shapes_suite)
    assert recipe.distils and recipe.distilled_teachers == ["dfn-l14-s39b", "dfn-l14"]
    outcome = run_trial_stages(recipe, shapes_ws, progress=False)  # data.train (clipart-web) is never built
    assert outcome.trained.key == planned_train_key(recipe, shapes_ws)
    assert [s.stage for s in outcome.stages] == ["train", "eval"] and 0 <= outcome.metrics["avg"] <= 1
    history = (outcome.train_dir / "history.jsonl").read_text()
    assert "train/gt/kd_image_to_text" in history and "train/synthetic/kd_text_to_image" in history
    assert any("released datacompdr shards" in line for line in outcome.lineage["external"])

    (folder / "00000001.tar").unlink()  # other shards: another student
    assert planned_train_key(recipe, shapes_ws) != outcome.trained.key


def test_released_shards_and_a_reinforcement_are_not_mixed(shapes_suite, tmp_path):
    with pytest.raises(ConfigError, match="nothing to reinforce"):
        released_recipe(str(tmp_path / "*.tar"), shapes_suite, **{"reinforce.teachers": ["lite0-minilm"]})
    with pytest.raises(ConfigError, match="released shards hold"):
        released_recipe(str(tmp_path / "*.tar"), shapes_suite, **{"distill.mode": "online"})
