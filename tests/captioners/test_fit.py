"""The captioner stage: cached, logged once, fine-tunes keyed by their parents, resumable, and it learns."""

import json
import re

import pytest
import torch
from mlflow import MlflowClient

from workbench.captioners.decode import Beam
from workbench.captioners.fit import EXPERIMENT, captioner_key, fit_captioner, list_captioners, load_captioner
from workbench.captioners.generate import caption_split
from workbench.captioners.spec import load_registry
from workbench.captioners.vocab import Vocabulary
from workbench.config.overrides import ConfigError

from .conftest import REGISTRY, write_registry


def test_fit_is_logged_once_and_a_hit_the_second_time(shapes_ws, tiny_registry):
    fitted = fit_captioner("shapes", shapes_ws, tiny_registry, progress=False)
    assert not fitted.hit and fitted.info["fit"]["steps"] == 3
    for name in ("model.pt", "vocab.json", "captioner.json", "history.jsonl", "figures/losses.png",
                 "figures/samples/samples.html", "figures/samples/samples.png"):
        assert (fitted.path / name).is_file(), name
    assert {"train/caption_loss", "eval/caption_loss", "eval/contrastive_loss"} <= set(fitted.info["fit"]["final"])

    again = fit_captioner("shapes", shapes_ws, tiny_registry, progress=False)
    assert again.hit and again.key == fitted.key and again.info == fitted.info
    client = MlflowClient(shapes_ws.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["workbench.stage.captioner"] == fitted.key
    assert runs[0].data.params["fit.lr"] == "0.003" and "final/eval_caption_loss" in runs[0].data.metrics
    assert "fitted (" in list_captioners(shapes_ws, tiny_registry.path)



def test_a_finetunes_key_depends_on_its_parent(both_ws, tmp_path):
    def keys(parent_lr: str):
        path = tmp_path / f"registry-{parent_lr}.yaml"
        path.write_text(REGISTRY.format(steps=3).replace("lr: 3.0e-3", f"lr: {parent_lr}"))
        registry = load_registry(path)
        return captioner_key("shapes", registry, both_ws), captioner_key("shapes-fancy", registry, both_ws)

    (parent_a, child_a), (parent_b, child_b) = keys("3.0e-3"), keys("1.0e-3")
    assert parent_a != parent_b and child_a != child_b
    assert keys("3.0e-3") == (parent_a, child_a)  # and nothing else moves it


def test_finetune_continues_from_its_parent_with_a_grown_vocabulary(fitted):
    ws, registry = fitted
    child = fit_captioner("shapes-fancy", ws, registry, progress=False, expect="finetune")
    parent = fit_captioner("shapes", ws, registry, progress=False)
    assert parent.hit and child.info["parent_key"] == parent.key
    parent_vocab, child_vocab = (Vocabulary.load(f.path / "vocab.json") for f in (parent, child))
    assert child_vocab.bpe_ids[:len(parent_vocab.bpe_ids)] == parent_vocab.bpe_ids
    assert child.info["fit"]["new_tokens"] == len(child_vocab) - len(parent_vocab) > 0  # "there", "is", "at", "!"
    start = torch.load(parent.path / "model.pt", weights_only=True)["model"]["visual.conv1.weight"]
    tuned = load_captioner("shapes-fancy", ws, registry).model.state_dict()["visual.conv1.weight"]
    assert (tuned - start).abs().max() < 0.05 and not torch.equal(tuned, start)  # continued, not re-initialised


def test_the_wrong_command_for_a_kind_names_the_right_one(fitted):
    ws, registry = fitted
    with pytest.raises(ConfigError, match="workbench captioner finetune shapes-fancy"):
        fit_captioner("shapes-fancy", ws, registry, progress=False, expect="pretrain")
    with pytest.raises(ConfigError, match="known: shapes, shapes-fancy"):
        fit_captioner("coco", ws, registry, progress=False)


def test_unfitted_captioner_says_how_to_fit_it(shapes_ws, tiny_registry):
    with pytest.raises(ConfigError, match="workbench captioner fit shapes"):
        load_captioner("shapes", shapes_ws, tiny_registry)


def test_bad_registries_fail_before_any_work(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(REGISTRY.format(steps=3).replace("parent: shapes", "parent: nowhere"))
    with pytest.raises(ConfigError, match="shapes-fancy.parent: unknown captioner 'nowhere'"):
        load_registry(path)
    path.write_text(REGISTRY.format(steps=3).replace("steps: 3,", "steps: 3, learning_rate: 1,"))
    with pytest.raises(ConfigError, match="learning_rate"):
        load_registry(path)


def test_a_killed_fit_resumes_at_its_checkpoint(shapes_ws, tmp_path, monkeypatch):
    from workbench.captioners import train

    path = tmp_path / "resume.yaml"
    path.write_text(REGISTRY.format(steps=6).replace("checkpoint_every: 50", "checkpoint_every: 2")
                    .replace("log_every: 10", "log_every: 2"))
    registry = load_registry(path)
    steps_seen, real_lr = [], train.lr_at

    def lr_at(step, fit):
        if step == 5 and not steps_seen.count("killed"):
            steps_seen.append("killed")
            raise KeyboardInterrupt
        steps_seen.append(step)
        return real_lr(step, fit)

    monkeypatch.setattr(train, "lr_at", lr_at)
    with pytest.raises(KeyboardInterrupt):
        fit_captioner("shapes", shapes_ws, registry, progress=False)
    resumed = fit_captioner("shapes", shapes_ws, registry, progress=False)
    assert steps_seen == [0, 1, 2, 3, 4, "killed", 4, 5]  # the checkpoint at step 4 was the last one
    assert resumed.info["fit"]["resumed_from_step"] == 4
    history = [json.loads(line) for line in (resumed.path / "history.jsonl").read_text().splitlines()]
    assert [row["step"] for row in history if "train/loss" in row["metrics"]] == [2, 4, 6]
    client = MlflowClient(shapes_ws.mlflow_uri)
    statuses = sorted(r.info.status for r in client.search_runs(
        [client.get_experiment_by_name(EXPERIMENT).experiment_id]))
    assert statuses == ["FINISHED", "KILLED"]


def test_a_fitted_captioner_names_colour_and_shape_far_above_chance(fitted):
    ws, registry = fitted
    captioner = load_captioner("shapes", ws, registry)
    captions = caption_split(captioner, ws, "shapes", "eval", 1, Beam(beams=2), progress=False).captions()
    right = {"colour": 0, "shape": 0}
    for uid, (caption,) in captions.items():
        shape, colour, _place, _copy = uid.split("-")
        words = re.findall(r"\w+", caption)
        right["colour"] += colour in words
        right["shape"] += shape in words
    n = len(captions)
    assert n >= 40
    # chance: 1/4 colours, 1/3 shapes; with n ≈ 48 a rate of 0.6 is > 5 standard errors above either
    assert right["colour"] / n > 0.6 and right["shape"] / n > 0.6, right


def test_context_length_sets_the_text_positions_and_only_then_the_key(shapes_ws, tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text(REGISTRY.format(steps=3).replace("model: micro-coca-xs\n", "model: micro-coca-xs\n"
                                                     "    context_length: 8\n", 1))
    short, default = load_registry(path), load_registry(write_registry(tmp_path / "default.yaml", steps=3))
    assert captioner_key("shapes", short, shapes_ws) != captioner_key("shapes", default, shapes_ws)
    assert "context_length" not in default.captioners["shapes"].model_dump()  # unset: every cached key stays
    fit_captioner("shapes", shapes_ws, short, progress=False)
    captioner = load_captioner("shapes", shapes_ws, short)
    assert captioner.vocab.context_length == 8
    assert captioner.model.text.positional_embedding.shape[0] == 8 + 1  # CoCa appends its class token
    assert captioner.vocab(["a red circle on the left of a very long caption"]).shape == (1, 8)
