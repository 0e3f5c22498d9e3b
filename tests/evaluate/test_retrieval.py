import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.evaluate.retrieval import recall_at_k, score_retrieval


def _reference(queries: np.ndarray, keys: np.ndarray, ks) -> dict[int, float]:
    """Unchunked, in float64 numpy: expected hit under random tie-breaking."""
    sims = queries.astype(np.float64) @ keys.astype(np.float64).T
    out = {}
    for k in ks:
        hits = []
        for i, row in enumerate(sims):
            above = np.sum(row > row[i])
            ties = np.sum(row == row[i]) - 1
            hits.append(min(1.0, max(0.0, (k - above) / (ties + 1))))
        out[k] = float(np.mean(hits))
    return out


def test_chunked_equals_unchunked_on_random_embeddings():
    g = torch.Generator().manual_seed(0)
    images = F.normalize(torch.randn(300, 16, generator=g), dim=-1)
    texts = F.normalize(images + 0.8 * torch.randn(300, 16, generator=g), dim=-1)
    chunked = recall_at_k(images, texts, chunk_size=64)
    assert chunked == recall_at_k(images, texts, chunk_size=300)
    assert chunked == pytest.approx(_reference(images.numpy(), texts.numpy(), (1, 5, 10)), abs=1e-12)
    assert 0 < chunked[1] < chunked[5] < chunked[10] < 1


def test_ties_are_handled_identically_in_and_across_chunks():
    # Few distinct rows with small-integer entries: many exact ties, and float sums are exact in any order.
    g = torch.Generator().manual_seed(1)
    images = torch.randint(-2, 3, (300, 3), generator=g).float()
    texts = torch.randint(-2, 3, (300, 3), generator=g).float()
    texts[:100] = images[:100]
    expected = _reference(images.numpy(), texts.numpy(), (1, 5, 10))
    for chunk in (1, 64, 300, 1000):
        assert recall_at_k(images, texts, chunk_size=chunk) == pytest.approx(expected, abs=1e-12)


def test_perfect_constant_and_duplicate_cases():
    eye = torch.eye(50)
    assert recall_at_k(eye, eye) == {1: 1.0, 5: 1.0, 10: 1.0}
    constant = recall_at_k(torch.ones(50, 4), torch.ones(50, 4))
    assert constant == pytest.approx({1: 1 / 50, 5: 5 / 50, 10: 10 / 50})  # exactly chance
    pairs = torch.eye(25).repeat_interleave(2, dim=0)  # every caption twice: a 2-way tie
    assert recall_at_k(pairs, pairs) == pytest.approx({1: 0.5, 5: 1.0, 10: 1.0})


def test_chance_and_stderr():
    scores = score_retrieval(torch.eye(40), torch.eye(40))
    metrics = scores.metrics()
    assert metrics["r1"] == (1.0, 1 / 40, 0.0)
    assert metrics["t2i_r10"][1] == pytest.approx(10 / 40)
    assert scores.stderr(0.1) == pytest.approx((0.1 * 0.9 / 40) ** 0.5)
    assert set(metrics) == {f"{d}r{k}" for d in ("", "i2t_", "t2i_") for k in (1, 5, 10)}


def test_non_finite_embeddings_score_nan():
    bad = torch.full((5, 3), float("nan"))
    assert all(np.isnan(v) for v in recall_at_k(bad, torch.eye(5, 3)).values())
