import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.evaluate.zeroshot import class_embeddings, score_zeroshot


def test_balanced_accuracy_on_an_imbalanced_toy_matches_hand_computation():
    # 3 classes with 6, 3, 1 images; predictions via one-hot image embeddings against one-hot classes.
    labels = torch.tensor([0] * 6 + [1] * 3 + [2])
    predicted = torch.tensor([0, 0, 0, 0, 0, 1, 1, 0, 0, 2])
    scores = score_zeroshot(F.one_hot(predicted, 3).float(), torch.eye(3), labels)
    recalls = [5 / 6, 1 / 3, 1.0]
    assert scores.top1 == pytest.approx(7 / 10)
    assert scores.balanced_acc == pytest.approx(sum(recalls) / 3)
    assert scores.chance_balanced_acc == pytest.approx(1 / 3)
    assert scores.chance_top1 == pytest.approx(6 / 10)
    expected_se = math.sqrt(sum(r * (1 - r) / n for r, n in zip(recalls, [6, 3, 1]))) / 3
    assert scores.stderr_balanced_acc == pytest.approx(expected_se)
    assert scores.stderr_top1 == pytest.approx(math.sqrt(0.7 * 0.3 / 10))


def test_a_collapsed_encoder_scores_exactly_chance_not_the_first_class():
    labels = torch.tensor([0] * 6 + [1] * 3 + [2])
    scores = score_zeroshot(torch.ones(10, 4), F.normalize(torch.ones(3, 4), dim=-1), labels)
    assert scores.balanced_acc == pytest.approx(1 / 3)
    assert scores.top1 == pytest.approx(1 / 3)


def test_non_finite_embeddings_score_nan():
    scores = score_zeroshot(torch.full((4, 3), float("nan")), torch.eye(3), torch.tensor([0, 1, 2, 0]))
    assert math.isnan(scores.balanced_acc) and math.isnan(scores.top1)


def test_labels_must_cover_every_class():
    with pytest.raises(ValueError, match="each at least once"):
        score_zeroshot(torch.eye(3), torch.eye(3), torch.tensor([0, 1, 1]))


class _TemplateEncoder:
    image_size = 8

    def encode_texts(self, texts):
        return torch.stack([torch.tensor([1.0, 0.0]) if t.startswith("a") else torch.tensor([0.0, 3.0])
                            for t in texts])


def test_class_embedding_is_the_renormalised_mean_of_normalised_prompts():
    emb = class_embeddings(_TemplateEncoder(), ["x", "y"], ["a {}", "the {}"], batch_size=3)
    expected = np.array([1.0, 1.0]) / math.sqrt(2)  # mean of (1, 0) and normalised (0, 1)
    assert np.allclose(emb.numpy(), [expected, expected])
