"""Gradient accumulation is exact for the contrastive and distillation losses: the similarity
matrices span the whole batch, so 4 micro-batches give the gradients of one big batch."""

import contextlib

import pytest
import torch

from workbench.config.recipe import ModelConfig
from workbench.models.students import create_student, make_encoder
from workbench.train.objective import Batch, distillation_loss, plain_clip_loss, train_step


def _batch(synthetic: bool) -> Batch:
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(16, 3, 32, 32, generator=g)
    tokens = [torch.randint(1, 500, (16, 16), generator=g)]
    unit = lambda *shape: torch.nn.functional.normalize(torch.randn(*shape, generator=g), dim=-1)  # noqa: E731
    targets = {"teacher_image": torch.cat([unit(16, 8), unit(16, 6)], 1),
               "teacher_text": torch.cat([unit(16, 8), unit(16, 6)], 1)}
    if synthetic:
        tokens.append(torch.randint(1, 500, (16, 16), generator=g))
        targets["teacher_syn"] = torch.cat([unit(16, 8), unit(16, 6)], 1)
    return Batch(pixels, tokens, targets)


def _gradients(loss_fn, batch: Batch, accumulate: int) -> tuple[dict[str, torch.Tensor], float]:
    torch.manual_seed(0)
    model = create_student(ModelConfig(name="micro-vit-xs"), 10.0)
    encoder = make_encoder(model, "micro-vit-xs")
    parts = train_step(model, encoder.normalize, batch, loss_fn, accumulate, contextlib.nullcontext())
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, float(parts.total.detach())


@pytest.mark.parametrize("loss", ["clip", "distill", "distill+synthetic"])
def test_four_micro_batches_equal_one_batch(loss):
    synthetic = loss.endswith("synthetic")
    loss_fn = plain_clip_loss if loss == "clip" else distillation_loss(0.5, "kl", 1.0, 0.8, [8, 6], [40.0, 60.0])
    batch = _batch(synthetic)
    whole, whole_loss = _gradients(loss_fn, batch, 1)
    split, split_loss = _gradients(loss_fn, batch, 4)
    assert split.keys() == whole.keys() and "logit_scale" in whole
    assert split_loss == pytest.approx(whole_loss, rel=1e-5)
    for name, grad in whole.items():
        assert torch.allclose(split[name], grad, rtol=1e-4, atol=1e-6), name


def test_a_batch_that_does_not_split_is_an_error():
    with pytest.raises(ValueError, match="does not split into 3"):
        _gradients(plain_clip_loss, _batch(False), 3)
