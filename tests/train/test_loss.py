"""The training loss against a direct, independent computation of MobileCLIP2 Eq. 1 and 2.

The reference below is written from the equations with explicit loops in float64 numpy: softmax rows,
KL(p‖q) = Σ p log(p/q), averaged over rows, teachers and both directions; no torch, no shared code.
"""

import numpy as np
import pytest
import torch

from workbench.train.objective import distillation_loss

B = 6
DIMS = [4, 3, 5]  # three teachers of different widths
TEACHER_SCALES = [50.0, 70.0, 30.0]


def _unit(rng, rows, cols):
    x = rng.normal(size=(rows, cols))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _softmax_row(row):
    e = np.exp(row - row.max())
    return e / e.sum()


def _kl(p, q):
    return sum(p[j] * np.log(p[j] / q[j]) for j in range(len(p)))


def _affinity(a, b, scale):
    return np.array([[scale * float(np.dot(a[i], b[j])) for j in range(len(b))] for i in range(len(a))])


def reference_caption_loss(image, text, scale, teacher_images, teacher_texts, lam, ensemble):
    student = _affinity(image, text, scale)
    labels = range(len(image))
    clip = 0.0
    for logits in (student, student.T):
        clip += -np.mean([np.log(_softmax_row(logits[i])[i]) for i in labels]) / 2
    directions = []
    for flip in (False, True):
        s = student.T if flip else student
        teacher_logits = [(_affinity(tt, ti, sc) if flip else _affinity(ti, tt, sc))
                          for ti, tt, sc in zip(teacher_images, teacher_texts, TEACHER_SCALES)]
        if ensemble == "kl":
            value = np.mean([np.mean([_kl(_softmax_row(t[i]), _softmax_row(s[i])) for i in labels])
                             for t in teacher_logits])
        else:
            value = np.mean([_kl(np.mean([_softmax_row(t[i]) for t in teacher_logits], axis=0), _softmax_row(s[i]))
                             for i in labels])
        directions.append(value)
    distill = (directions[0] + directions[1]) / 2  # the 1/(2bK) of Eq. 1: rows, teachers, directions
    return (1 - lam) * clip + lam * distill, clip, directions


@pytest.mark.parametrize("ensemble", ["kl", "probabilities"])
@pytest.mark.parametrize("lam", [1.0, 0.3])
def test_loss_matches_a_direct_computation_of_eq_1_and_2(ensemble, lam):
    rng = np.random.default_rng(0)
    image, text, synthetic = _unit(rng, B, 8), _unit(rng, B, 8), _unit(rng, B, 8)
    teacher_image = [_unit(rng, B, d) for d in DIMS]
    teacher_text = [_unit(rng, B, d) for d in DIMS]
    teacher_syn = [_unit(rng, B, d) for d in DIMS]
    scale, gt_weight, syn_weight = 20.0, 0.7, 1.3

    expected_gt, clip_gt, dirs_gt = reference_caption_loss(image, text, scale, teacher_image, teacher_text, lam, ensemble)
    expected_syn, _, dirs_syn = reference_caption_loss(image, synthetic, scale, teacher_image, teacher_syn, lam, ensemble)
    expected = gt_weight * expected_gt + syn_weight * expected_syn

    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    targets = {"teacher_image": t(np.concatenate(teacher_image, axis=1)),
               "teacher_text": t(np.concatenate(teacher_text, axis=1)),
               "teacher_syn": t(np.concatenate(teacher_syn, axis=1))}
    loss_fn = distillation_loss(lam, ensemble, gt_weight, syn_weight, DIMS, TEACHER_SCALES)
    out = loss_fn(t(image), [t(text), t(synthetic)], torch.tensor(scale, dtype=torch.float64), targets)
    assert float(out.total) == pytest.approx(expected, rel=1e-9)
    assert float(out.parts["gt/kd_image_to_text"]) == pytest.approx(dirs_gt[0], rel=1e-9)
    assert float(out.parts["gt/kd_text_to_image"]) == pytest.approx(dirs_gt[1], rel=1e-9)
    assert float(out.parts["synthetic/kd_text_to_image"]) == pytest.approx(dirs_syn[1], rel=1e-9)
    if lam < 1:
        assert float(out.parts["gt/clip"]) == pytest.approx(clip_gt, rel=1e-9)
    else:
        assert "gt/clip" not in out.parts  # λ = 1: no CLIP term is computed


def test_distillation_is_zero_when_the_student_copies_a_single_teacher():
    rng = np.random.default_rng(1)
    image, text = torch.tensor(_unit(rng, B, 4)), torch.tensor(_unit(rng, B, 4))
    loss_fn = distillation_loss(1.0, "kl", 1.0, 1.0, [4], [25.0])
    out = loss_fn(image, [text], torch.tensor(25.0, dtype=torch.float64), {"teacher_image": image, "teacher_text": text})
    assert float(out.total) == pytest.approx(0.0, abs=1e-12)


def test_a_logit_scale_per_teacher_is_required():
    from workbench.config.overrides import ConfigError, validate_recipe

    tree = {"reinforce": {"teachers": ["a", "b"]}, "distill": {"logit_scales": [60.0]}}
    with pytest.raises(ConfigError, match="1 scales for 2 distilled teachers"):
        validate_recipe(tree, "study.yaml: axes.scale value #1")
    with pytest.raises(ConfigError, match="not stored"):
        validate_recipe({"reinforce": {"teachers": ["a"]}, "distill": {"teachers": ["c"]}}, "x")


def test_the_two_ensemble_variants_give_the_student_the_same_gradient():
    """mean_k KL(p_k ‖ q) and KL(mean_k p_k ‖ q) differ by a constant in the student, so their gradients agree."""
    rng = np.random.default_rng(2)
    teacher_image = [torch.tensor(_unit(rng, B, d)) for d in DIMS]
    teacher_text = [torch.tensor(_unit(rng, B, d)) for d in DIMS]
    targets = {"teacher_image": torch.cat(teacher_image, 1), "teacher_text": torch.cat(teacher_text, 1)}
    values, grads = {}, {}
    for ensemble in ("kl", "probabilities"):
        image = torch.tensor(_unit(np.random.default_rng(3), B, 8), requires_grad=True)
        text = torch.tensor(_unit(np.random.default_rng(4), B, 8), requires_grad=True)
        out = distillation_loss(1.0, ensemble, 1.0, 1.0, DIMS, TEACHER_SCALES)(
            image, [text], torch.tensor(20.0, dtype=torch.float64), targets)
        out.total.backward()
        values[ensemble], grads[ensemble] = float(out.total), (image.grad, text.grad)
    assert values["kl"] > values["probabilities"] + 1e-3  # the logged values differ (Jensen) ...
    for a, b in zip(grads["kl"], grads["probabilities"]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)  # ... the gradients do not
