"""The training loop: determinism, exact resume, NaN detection, the schedule."""

import json

import pytest
import torch

from workbench.config.recipe import TrainConfig
from workbench.config.resolve import resolve_recipe
from workbench.train.loop import TrainingDiverged, lr_at
from workbench.train.trainer import train_student


def smoke_recipe(suite: str, **overrides):
    layer = {"data.train": ["shapes"], "eval.suite": suite, "data.max_train_samples": None, **overrides}
    return resolve_recipe("clip", "smoke", [("test", layer)])


class Interrupt(Exception):
    pass


class InterruptAfter:
    """Raises once the run has logged past ``samples`` seen samples (after a checkpoint was written)."""

    def __init__(self, samples: int):
        self.samples = samples

    def log_metrics(self, metrics, step):
        if step > self.samples:
            raise Interrupt

    def should_prune(self, objective, step):
        return False


def without_timings(history: str) -> list[dict]:
    rows = [json.loads(line) for line in history.splitlines()]
    for row in rows:
        row["metrics"].pop("train/samples_per_s", None)
    return rows


def test_same_seed_gives_bitwise_identical_metrics(shapes_ws, shapes_suite, tmp_path):
    recipe = smoke_recipe(shapes_suite)
    histories = []
    for run in ("a", "b"):
        out = tmp_path / run
        out.mkdir()
        summary = train_student(recipe, shapes_ws, out, tmp_path / f"{run}.partial", progress=False)
        histories.append(without_timings((out / "history.jsonl").read_text()))
    assert histories[0] == histories[1]  # exact float equality, loss and eval alike, at the same thread count
    assert summary.threads == torch.get_num_threads()
    assert any("eval/avg" in row["metrics"] for row in histories[0])


def test_resume_after_interruption_equals_uninterrupted_run(shapes_ws, shapes_suite, tmp_path):
    recipe = smoke_recipe(shapes_suite, **{"train.steps": 8, "train.checkpoint_every": 4, "train.log_every": 2})
    straight = tmp_path / "straight"
    straight.mkdir()
    train_student(recipe, shapes_ws, straight, tmp_path / "straight.partial", progress=False)

    resumed, partial = tmp_path / "resumed", tmp_path / "resumed.partial"
    resumed.mkdir()
    with pytest.raises(Interrupt):
        train_student(recipe, shapes_ws, resumed, partial, InterruptAfter(5 * recipe.train.batch_size),
                      progress=False)
    assert torch.load(partial / "checkpoint.pt", weights_only=False)["step"] == 4
    summary = train_student(recipe, shapes_ws, resumed, partial, progress=False)
    assert summary.resumed_from_step == 4
    a = torch.load(straight / "model.pt", weights_only=False)["model"]
    b = torch.load(resumed / "model.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert without_timings((straight / "history.jsonl").read_text()) == \
        without_timings((resumed / "history.jsonl").read_text())


def test_nan_loss_fails_the_run_with_a_reason(shapes_ws, shapes_suite, tmp_path):
    recipe = smoke_recipe(shapes_suite, **{"train.lr": 1e12, "train.warmup_steps": 0, "train.grad_clip": None})
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step \d+ \(lr"):
        train_student(recipe, shapes_ws, tmp_path, tmp_path / "partial", progress=False)


def test_lr_schedule_warms_up_then_decays_to_min_lr():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1.0, min_lr=0.01)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(55, cfg) == pytest.approx(0.505)
    assert lr_at(100, cfg) == pytest.approx(0.01)


def test_ema_weights_are_saved_and_resumed(shapes_ws, shapes_suite, tmp_path):
    """With a decay of (almost) 1 the average stays at its first value: the weights after step 1."""
    def weights(name, **overrides):
        out = tmp_path / name
        out.mkdir()
        recipe = smoke_recipe(shapes_suite, **overrides)
        train_student(recipe, shapes_ws, out, tmp_path / f"{name}.partial", progress=False)
        return torch.load(out / "model.pt", weights_only=False)["model"]

    one_step = weights("one", **{"train.steps": 1})
    averaged = weights("ema", **{"train.ema": 1 - 1e-12})
    raw = weights("raw")
    for name, value in one_step.items():
        assert torch.allclose(averaged[name], value, atol=1e-6), name
    assert any(not torch.allclose(raw[n], one_step[n]) for n in raw)
    with pytest.raises(Interrupt):  # resumes with its average (stored in the checkpoint)
        train_student(smoke_recipe(shapes_suite, **{"train.ema": 1 - 1e-12}), shapes_ws, tmp_path / "ema",
                      tmp_path / "resumed.partial", InterruptAfter(4 * 16), progress=False)
    out = tmp_path / "resumed"
    out.mkdir()
    train_student(smoke_recipe(shapes_suite, **{"train.ema": 1 - 1e-12}), shapes_ws, out, tmp_path / "resumed.partial",
                  progress=False)
    resumed = torch.load(out / "model.pt", weights_only=False)["model"]
    for name, value in one_step.items():
        assert torch.allclose(resumed[name], value, atol=1e-6), name


@pytest.mark.gpu
def test_bf16_autocast_trains_on_cuda(shapes_ws, shapes_suite, tmp_path):
    """The paper profile's precision on the device it is for: finite losses, a saved student, evals run."""
    recipe = smoke_recipe(shapes_suite, **{"train.precision": "bf16"})
    summary = train_student(recipe, shapes_ws, tmp_path, tmp_path / "partial", progress=False)
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert summary.steps == recipe.train.steps and torch.isfinite(torch.tensor(summary.final_loss))
    assert any("eval/avg" in row["metrics"] for row in history)
    state = torch.load(tmp_path / "model.pt", map_location="cpu", weights_only=False)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
