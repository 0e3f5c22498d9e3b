"""Image↔text retrieval recall@k, in chunks of queries so memory stays O(chunk × N), never N × N.

Item i's image and caption are each other's only positive. Instead of a top-k per query, the rank of
the positive is counted exactly: how many keys score above it, and how many tie with it. A tie block
is ordered at random in expectation, so a query scores P(hit@k) = clamp((k - above) / (ties + 1), 0, 1).
That makes chunked and unchunked results identical, keeps duplicate captions (identical embeddings)
from counting as hits or misses by accident, and gives a collapsed encoder exactly chance, k / N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from workbench.evaluate.spec import RECALL_KS


def recall_at_k(queries: torch.Tensor, keys: torch.Tensor, ks: Sequence[int] = RECALL_KS,
                chunk_size: int = 1024) -> dict[int, float]:
    """Mean P(hit@k) of each query i whose one positive is key i (queries and keys aligned, [N, D])."""
    if queries.shape[0] != keys.shape[0]:
        raise ValueError(f"queries ({queries.shape[0]}) and keys ({keys.shape[0]}) must be aligned")
    n = queries.shape[0]
    if not (torch.isfinite(queries).all() and torch.isfinite(keys).all()):
        return {k: math.nan for k in ks}
    k_values = torch.tensor(list(ks), dtype=torch.float64)
    hits = torch.zeros(len(ks), dtype=torch.float64)
    keys_t = keys.float().T
    for start in range(0, n, chunk_size):
        sims = queries[start:start + chunk_size].float() @ keys_t  # [c, N]
        rows = torch.arange(sims.shape[0])
        positive = sims[rows, rows + start].unsqueeze(1)
        above = (sims > positive).sum(dim=1, dtype=torch.float64)
        ties = (sims == positive).sum(dim=1, dtype=torch.float64) - 1
        hits += ((k_values - above[:, None]) / (ties[:, None] + 1)).clamp(0, 1).sum(dim=0)
    return {k: float(h) / n for k, h in zip(ks, hits)}


@dataclass(frozen=True)
class RetrievalScores:
    image_to_text: dict[int, float]
    text_to_image: dict[int, float]
    n: int

    def chance(self, k: int) -> float:
        """A random ranking puts the one positive in the top k with probability k / N."""
        return min(1.0, k / self.n)

    def stderr(self, recall: float) -> float:
        return math.sqrt(recall * (1 - recall) / self.n)

    def metrics(self) -> dict[str, tuple[float, float, float]]:
        """Metric name → (value, chance, stderr); ``r{k}`` is the mean of both directions.

        The two directions share items and are positively correlated, so the mean's stderr takes the
        conservative (fully correlated) bound: the mean of the two stderrs.
        """
        out: dict[str, tuple[float, float, float]] = {}
        for k, i2t in self.image_to_text.items():
            t2i = self.text_to_image[k]
            out[f"r{k}"] = ((i2t + t2i) / 2, self.chance(k), (self.stderr(i2t) + self.stderr(t2i)) / 2)
        for direction, recalls in (("i2t", self.image_to_text), ("t2i", self.text_to_image)):
            out.update({f"{direction}_r{k}": (r, self.chance(k), self.stderr(r)) for k, r in recalls.items()})
        return out


def score_retrieval(image_emb: torch.Tensor, text_emb: torch.Tensor, ks: Sequence[int] = RECALL_KS,
                    chunk_size: int = 1024) -> RetrievalScores:
    """R@k both ways for aligned [N, D] image and caption embeddings."""
    return RetrievalScores(image_to_text=recall_at_k(image_emb, text_emb, ks, chunk_size),
                           text_to_image=recall_at_k(text_emb, image_emb, ks, chunk_size),
                           n=image_emb.shape[0])
