"""`study plan`: trials, every stage with its cache state and estimated time, before and after a run."""

import shutil
from pathlib import Path

import pytest
import torch

from tests.study.conftest import write_study
from workbench.stages.cache import StageCache
from workbench.study.orchestrate import run_study
from workbench.study.plan import make_plan
from workbench.train.loop import CHECKPOINT

ZOO = """
teachers:
  lit-tiny:
    kind: lit
    image_tower: efficientnet-lite0
    image_size: 48
    embed_dim: 32
    data: [shapes]
    suite: {suite}
    fit: {{steps: 20, batch_size: 16, warmup_steps: 5, views: 1}}
  scratch-tiny:
    kind: scratch
    profile: smoke
    set: {{data.train: [shapes], eval.suite: {suite}, train.steps: 40}}
"""

REGISTRY = """
captioners:
  shapes-web:
    kind: pretrain
    model: micro-coca
    data: [shapes]
    fit: {steps: 30, batch_size: 16, warmup_steps: 1, eval_every: 10, checkpoint_every: 10}
  shapes-tuned:
    kind: finetune
    parent: shapes-web
    data: [shapes]
    fit: {steps: 10, batch_size: 16, warmup_steps: 1, eval_every: 5, checkpoint_every: 5}
"""


def test_under_the_paper_profile_trainings_are_priced_in_gpu_hours(shapes_ws, shapes_suite, tmp_path):
    study = write_study(tmp_path / "study.yaml", shapes_suite, "  lr: {key: train.lr, values: [1.0e-3]}", seeds=1)
    text = make_plan(study, shapes_ws, "paper").render()
    assert "MobileCLIP-B, 6 steps" in text and "(warm-up 1,000, bf16)" in text
    gpu = next(line for line in text.splitlines() if line.startswith("GPU: "))
    assert "H100-hours for 1 bf16 training (MobileCLIP-B " in gpu and "assumed 35%" in gpu
    assert "GPU: " not in make_plan(study, shapes_ws).render()  # the smoke profile trains on CPU


def test_plan_shows_misses_then_hits(shapes_ws, shapes_suite, tmp_path):
    study = write_study(tmp_path / "study.yaml", shapes_suite, "  lr: {key: train.lr, values: [1.0e-3, 3.0e-3]}")
    before = make_plan(study, shapes_ws)
    assert len(before.trials) == 4 and {t.train for t in before.trials} == {"run"}
    assert before.samples_to_train == 4 * 6 * 16
    assert before.stored_bytes() > 0
    assert all(t.seconds > 0 for t in before.trials) and before.total_seconds > 0
    text = before.render()
    assert "0/4 trainings reused" in text and "datasets ready: shapes" in text
    assert "estimated wall time on a 2-core CPU" in text and "total: ~" in text

    run_study(study, shapes_ws, progress=False)
    after = make_plan(study, shapes_ws)
    assert {(t.train, t.eval) for t in after.trials} == {("hit", "hit")}
    assert after.samples_to_train == 0 and after.total_seconds == 0


def test_plan_counts_a_training_shared_by_two_points_once(shapes_ws, shapes_suite, tmp_path):
    """A plain recipe swept over a distillation-only key has one training key at both values: the plan
    trains it once (the later point says which point trains it) and sizes the study by what runs."""
    study = write_study(tmp_path / "study.yaml", shapes_suite, "  lr: {key: distill.lam, values: [0.5, 1.0]}")
    plan = make_plan(study, shapes_ws)
    states = [t.train for t in plan.trials]
    assert states.count("run") == 2 and len({t.key for t in plan.trials}) == 2
    shared = [t for t in plan.trials if t.train.startswith("=")]
    first = {t.key: t.spec.point_id for t in plan.trials if t.train == "run"}
    assert len(shared) == 2 and all(t.train == "=" + first[t.key] and t.seconds == 0.0 for t in shared)
    assert plan.samples_to_train == 2 * 6 * 16
    assert "2 trials share an earlier trial's training" in plan.render()


def test_plan_lists_teacher_and_captioner_fits_with_states_and_estimates(shapes_ws, shapes_suite, tmp_path):
    zoo, registry = tmp_path / "zoo.yaml", tmp_path / "captioners.yaml"
    zoo.write_text(ZOO.format(suite=shapes_suite))
    registry.write_text(REGISTRY)
    study = write_study(tmp_path / "kd.yaml", shapes_suite, "  lr: {key: train.lr, values: [1.0e-3, 3.0e-3]}", """
max_trials: 8
""")
    text = study.read_text().replace("  train.eval_every: 3\n", f"""  train.eval_every: 3
  reinforce.teachers: [lit-tiny, scratch-tiny]
  reinforce.zoo: {zoo}
  reinforce.captioners: [shapes-tuned]
  reinforce.registry: {registry}
  reinforce.captions: 2
""")
    study.write_text(text)

    def stages(plan, kind):
        return {s.name: s for s in plan.stages if s.stage == kind}

    plan = make_plan(study, shapes_ws)
    teachers, captioners = stages(plan, "teacher"), stages(plan, "captioner")
    assert set(teachers) == {"lit-tiny", "scratch-tiny"}
    assert set(captioners) == {"shapes-web", "shapes-tuned"}  # the fine-tune's parent is fitted first
    assert set(stages(plan, "captions")) == {"shapes-tuned on shapes"}
    assert [r.state for r in plan.reinforcements] == ["run"]  # one reinforcement for every trial
    for stage in [*teachers.values(), *captioners.values()]:
        assert stage.state == "run" and stage.seconds > 0, stage
    kinds = [s.stage for s in plan.stages]
    assert kinds.index("teacher") < kinds.index("captioner") < kinds.index("captions") < kinds.index("reinforce")
    text = plan.render()
    assert "lit-tiny" in text and "shapes-tuned" in text and "fine-tune of shapes-web" in text

    # a fitted teacher is a hit; a captioner with a checkpoint resumes (neither is fitted here)
    cache = StageCache(shapes_ws.cache_dir)
    lit_key = teachers["lit-tiny"].detail.split(":")[0]
    cache.path("teacher", lit_key).mkdir(parents=True)
    web_key = captioners["shapes-web"].detail.split(":")[0]
    cache.partial_dir("captioner", web_key).mkdir(parents=True)
    torch.save({"step": 20}, cache.partial_dir("captioner", web_key) / CHECKPOINT)
    again = make_plan(study, shapes_ws)
    teachers, captioners = stages(again, "teacher"), stages(again, "captioner")
    assert (teachers["lit-tiny"].state, teachers["lit-tiny"].seconds) == ("hit", 0.0)
    assert teachers["scratch-tiny"].state == "run"
    assert captioners["shapes-web"].state == "resume@20"
    assert captioners["shapes-web"].seconds == pytest.approx(plan_seconds(plan, "shapes-web") / 3)


def plan_seconds(plan, name: str) -> float:
    return next(s.seconds for s in plan.stages if s.name == name)


def test_plan_refuses_a_suite_outside_project_and_workspace(shapes_ws, shapes_suite, tmp_path):
    from workbench.config.overrides import ConfigError

    outside = shutil.copy(shapes_suite, tmp_path / "suite.yaml")
    study = write_study(tmp_path / "study.yaml", outside, "  lr: {key: train.lr, values: [1.0e-3]}")
    with pytest.raises(ConfigError, match="outside the project"):
        make_plan(study, shapes_ws)
    assert Path(outside).exists()


def test_plan_before_a_teachers_data_is_built_lists_the_build_and_keys_nothing(shapes_ws, shapes_suite, tmp_path):
    """A fresh clone plans before `data build`: a distilled trial whose teacher fits on an unbuilt dataset
    cannot be keyed yet, so it is "needs data" and the build is a stage, not a crash."""
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(ZOO.format(suite=shapes_suite).replace("data: [shapes]", "data: [shapes, glyphs]"))
    study = write_study(tmp_path / "kd.yaml", shapes_suite, "  lr: {key: train.lr, values: [1.0e-3]}")
    study.write_text(study.read_text().replace("  train.eval_every: 3\n", f"""  train.eval_every: 3
  reinforce.teachers: [lit-tiny]
  reinforce.zoo: {zoo}
"""))
    plan = make_plan(study, shapes_ws)
    assert {t.train for t in plan.trials} == {"needs data"}
    assert plan.datasets_missing == ["glyphs"] and "datasets to build: glyphs" in plan.render()
