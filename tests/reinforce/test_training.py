"""Training from a reinforced dataset: the stream hands the loss what was stored for the replayed view,
online KD computes the same targets at train time, and a study reinforces once for all its trials."""


import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from workbench.augment.policy import apply, compress
from workbench.data.shards import in_validation, iter_split
from workbench.models.students import get_tokenizer
from workbench.reinforce.stage import reinforce
from workbench.train.reinforced import ReinforcedStream, load_reinforced_set
from workbench.study.pipeline import distillation
from workbench.train.trainer import ReinforcedTask

from .conftest import SHARDS_SUITE, recipe


def _set(root, ws, **distill):
    r = recipe(root).model_copy(update={"distill": recipe(root).distill.model_copy(update=distill)})
    reinforced = reinforce(r, ws, progress=False).dataset
    data = load_reinforced_set(r, reinforced, ws, 48, get_tokenizer("micro-vit-xs"), progress=False)
    return r.model_copy(update={"train": r.train.model_copy(update={"batch_size": 16})}), reinforced, data


def test_a_batch_carries_the_stored_targets_of_the_replayed_view(reinforce_root, reinforce_ws):
    r, reinforced, data = _set(reinforce_root, reinforce_ws)
    stored = {s.uid: s for s in reinforced.samples()}
    uids = [u for u in stored]  # the stored order is the set's order (no cap on samples)
    stream = ReinforcedStream(data, r, 24)
    batch = stream.batch(3)
    assert batch.pixels.shape == (16, 3, 24, 24)
    for row, index in enumerate(batch.indices.tolist()):
        sample = stored[uids[index]]
        params = batch.params.rows([row])
        k = sample.param_aug.index(compress(params, data.policy)[0])  # which stored augmentation it replays
        assert np.allclose(sample.image_emb[k], batch.teacher_image[row].numpy(), atol=1e-3)
        replayed = apply(data.images[index:index + 1], params, data.policy, 24, data.source_size, data.reference_size)
        assert torch.equal(batch.pixels[row:row + 1], replayed)
        assert np.allclose(sample.text_emb[0], batch.teacher_text[row].numpy(), atol=1e-3)
        synthetic = batch.syn_texts[row]
        j = sample.syn_text["syn_text_shards-cap"].index(synthetic)
        assert np.allclose(sample.syn_emb["syn_text_shards-cap"][j], batch.teacher_syn[row].numpy(), atol=1e-3)
    again = ReinforcedStream(data, r, 24).batch(3)
    assert torch.equal(again.pixels, batch.pixels) and torch.equal(again.indices, batch.indices)
    half = ReinforcedStream(data, r, 24).batch(3, slice(8, 16))  # a rank's share: rows of the same batch
    assert torch.equal(half.pixels, batch.pixels[8:]) and torch.equal(half.teacher_syn, batch.teacher_syn[8:])


def test_online_kd_computes_what_was_stored(reinforce_root, reinforce_ws):
    r = recipe(reinforce_root)
    r = r.model_copy(update={"train": r.train.model_copy(update={"batch_size": 16}),
                             "distill": r.distill.model_copy(update={"mode": "online"})})
    offline = r.model_copy(update={"distill": r.distill.model_copy(update={"mode": "reinforced"})})
    stored = ReinforcedTask(offline, reinforce_ws, 32, get_tokenizer("micro-vit-xs"), False,
                            distillation(offline, reinforce_ws, progress=False)[0])
    online = ReinforcedTask(r, reinforce_ws, 32, get_tokenizer("micro-vit-xs"), False,
                            distillation(r, reinforce_ws, progress=False)[0])
    a, b = stored.batch(5, slice(None)), online.batch(5, slice(None))
    for key in ("teacher_image", "teacher_text", "teacher_syn"):
        cosine = torch.nn.functional.cosine_similarity(a.targets[key], b.targets[key])
        assert cosine.min() > 0.999, (key, cosine.min())
    # online loads the images at the source size and the student's pixels differ only by resampling
    assert (a.pixels - b.pixels).abs().mean() < 0.05


def test_mixing_and_caption_choice(reinforce_root, reinforce_ws):
    r, _, data = _set(reinforce_root, reinforce_ws, mix_synthetic=1.0)
    batch = ReinforcedStream(data, r, 24).batch(0)
    assert batch.syn_tokens is None and batch.teacher_syn is None  # one caption per image
    assert all(t not in data.captions for t in batch.texts if t)  # every caption swapped for a synthetic one
    r, _, data = _set(reinforce_root, reinforce_ws, synthetic_captions=0)
    assert ReinforcedStream(data, r, 24).batch(0).syn_tokens is None


def test_holdout_leaves_the_validation_slice_out_of_the_reinforced_set(reinforce_root, reinforce_ws):
    r, reinforced, full = _set(reinforce_root, reinforce_ws)
    held = r.model_copy(update={"data": r.data.model_copy(update={"holdout": True})})
    data = load_reinforced_set(held, reinforced, reinforce_ws, 48, get_tokenizer("micro-vit-xs"), progress=False)
    groups = {s.uid: s.group for s in iter_split(reinforce_ws.dataset_dir("shards"), "train")}  # content groups
    slice_ = {s.uid for s in reinforced.samples() if in_validation(groups[s.uid])}
    assert 0 < len(slice_) < len(full) and len(data) == len(full) - len(slice_)
    kept = [i for i, s in enumerate(reinforced.samples()) if s.uid not in slice_]
    assert data.captions == [full.captions[i] for i in kept]
    assert torch.equal(data.image_emb, full.image_emb[kept])


@pytest.mark.slow
def test_a_study_reinforces_once_and_distils_in_every_trial(reinforce_root, reinforce_ws, tmp_path):
    from workbench.study.orchestrate import run_study

    study = tmp_path / "kd.yaml"
    zoo, registry = reinforce_root / "zoo.yaml", reinforce_root / "captioners.yaml"
    study.write_text(f"""
study: kd
recipe: clip
profile: smoke
set:
  data.train: [shards]
  data.max_train_samples: null
  eval.suite: {SHARDS_SUITE}
  reinforce.teachers: [lite0-tiny, micro-openclip]
  reinforce.zoo: {zoo}
  reinforce.registry: {registry}
  reinforce.captioners: [shards-cap]
  reinforce.captions: 2
  reinforce.augmentations: 2
  reinforce.batch_size: 8
axes:
  scale: {{key: distill.logit_scales, values: [[10.0, 10.0], [60.0, 30.0]]}}
  ensemble: {{key: distill.ensemble, values: [kl, probabilities]}}
seeds: 1
""")
    summary = run_study(study, reinforce_ws, progress=False)
    assert summary.ran == 4 and not summary.failed
    client = MlflowClient(reinforce_ws.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("reinforcement").experiment_id])
    assert len(runs) == 1  # one reinforcement for four trials
    trials = client.search_runs([client.get_experiment_by_name("kd/smoke").experiment_id],
                                "tags.`workbench.kind` = 'trial'")
    assert len(trials) == 4
    for run in trials:
        history = client.get_metric_history(run.info.run_id, "train/gt/kd_image_to_text")
        assert history and all(np.isfinite(m.value) for m in history)
        assert "train/synthetic/kd_text_to_image" in run.data.metrics


def test_a_distilled_trial_runs_the_reinforcement_stage_once(reinforce_root, reinforce_ws, monkeypatch):
    """The trial opens the reinforced dataset and hands it to the trainer, which never reinforces itself."""
    import workbench.train.trainer as trainer
    from workbench.study import pipeline

    class FirstStep(Exception):
        pass

    r = recipe(reinforce_root)
    r = r.model_copy(update={"eval": r.eval.model_copy(update={"suite": str(SHARDS_SUITE)}),
                             "train": r.train.model_copy(update={"batch_size": 16})})
    reinforce(r, reinforce_ws, progress=False)  # built beforehand, as a study's prepare step does
    calls = []
    monkeypatch.setattr(pipeline, "reinforce", lambda *args, **kwargs: calls.append(1) or reinforce(*args, **kwargs))
    monkeypatch.setattr(trainer, "lr_at", lambda *args: (_ for _ in ()).throw(FirstStep()))
    with pytest.raises(FirstStep):  # the trainer reached its first step
        pipeline.run_trial_stages(r, reinforce_ws, progress=False)
    assert len(calls) == 1
