"""How good and how varied synthetic captions are: numbers behind the caption-quality figures.

- diversity: distinct-1 / distinct-2 (unique n-grams over all n-grams, corpus level);
- token statistics: words per caption, distinct words, most frequent words;
- style: how close the captions' words are to a reference set's (a fine-tune set, the ground truth):
  the share of words inside the reference vocabulary and a smoothed unigram KL divergence;
- teacher similarity: a fitted teacher's image-text cosine for synthetic, ground-truth and
  shuffled ground-truth captions (shuffled = chance level of the same caption distribution).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from workbench.data.arrays import fit_square

_WORD = re.compile(r"\w+|[^\w\s]")


def words(caption: str) -> list[str]:
    """Lower-cased words and punctuation marks (a period is part of a caption's style)."""
    return _WORD.findall(caption.lower())


def distinct_n(captions: Sequence[str], n: int) -> float:
    grams = [tuple(w[i:i + n]) for w in map(words, captions) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def token_stats(captions: Sequence[str], top: int = 15) -> dict:
    tokens = [words(c) for c in captions]
    counts = Counter(t for ts in tokens for t in ts)
    total = max(1, sum(counts.values()))
    lengths = [len(ts) for ts in tokens]
    return {"captions": len(captions), "mean_words": float(np.mean(lengths)) if lengths else 0.0,
            "std_words": float(np.std(lengths)) if lengths else 0.0, "distinct_words": len(counts),
            "top_words": [[word, round(count / total, 4)] for word, count in counts.most_common(top)]}


def style(captions: Sequence[str], reference: Sequence[str], smoothing: float = 0.5) -> dict[str, float]:
    """``in_vocab``: share of the captions' words that occur in ``reference``; ``kl``: KL(captions ‖
    reference) of add-``smoothing`` unigram distributions over the union vocabulary (0 = same usage)."""
    ours = Counter(t for c in captions for t in words(c))
    theirs = Counter(t for c in reference for t in words(c))
    total = sum(ours.values())
    if not total:
        return {"in_vocab": 0.0, "kl": float("nan")}
    in_vocab = sum(v for t, v in ours.items() if t in theirs) / total
    vocab = set(ours) | set(theirs)
    our_total = total + smoothing * len(vocab)
    their_total = sum(theirs.values()) + smoothing * len(vocab)
    kl = 0.0
    for token in vocab:
        p = (ours[token] + smoothing) / our_total
        q = (theirs[token] + smoothing) / their_total
        kl += p * math.log(p / q)
    return {"in_vocab": in_vocab, "kl": kl}


def derangement(count: int, seed: int) -> np.ndarray:
    """A seeded permutation with no fixed point: every image gets another image's caption."""
    if count < 2:
        raise ValueError("shuffled captions need at least two images")
    order = np.random.default_rng(seed).permutation(count)
    shifted = np.empty(count, dtype=int)
    shifted[order] = np.roll(order, 1)
    return shifted


@torch.no_grad()
def teacher_similarity(teacher, images: np.ndarray, truths: Sequence[str],
                       synthetic: dict[str, Sequence[Sequence[str]]], seed: int,
                       batch_size: int = 128) -> dict[str, dict[str, float]]:
    """Mean (and standard error over images) teacher cosine of image and caption.

    ``synthetic[label][i]`` are image i's captions; an image's synthetic similarity is the mean over
    its captions. Rows: each label, ``ground truth``, ``shuffled`` (another image's ground truth).
    """
    size = teacher.image_size
    embedded = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        if batch.shape[1] != size:
            batch = np.stack([np.asarray(fit_square(Image.fromarray(np.asarray(im)), size)) for im in batch])
        pixels = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div_(255.0)
        embedded.append(teacher.encode_images(pixels).float())
    image_emb = torch.cat(embedded)

    def per_image(texts: Sequence[str], owners: Sequence[int]) -> np.ndarray:
        text_emb = torch.cat([teacher.encode_texts(list(texts[i:i + batch_size])).float()
                              for i in range(0, len(texts), batch_size)])
        cos = (image_emb[list(owners)] * text_emb).sum(dim=-1).numpy()
        sums = np.bincount(owners, weights=cos, minlength=len(images))
        counts = np.bincount(owners, minlength=len(images))
        return sums[counts > 0] / counts[counts > 0]

    def summary(values: np.ndarray) -> dict[str, float]:
        return {"mean": float(values.mean()), "stderr": float(values.std(ddof=1) / math.sqrt(len(values)))
                if len(values) > 1 else 0.0, "images": len(values)}

    rows = {}
    for label, per in synthetic.items():
        texts = [c for caps in per for c in caps]
        owners = [i for i, caps in enumerate(per) for _ in caps]
        rows[label] = summary(per_image(texts, owners))
    rows["ground truth"] = summary(per_image(list(truths), list(range(len(truths)))))
    shuffled = derangement(len(truths), seed)
    rows["shuffled"] = summary(per_image([truths[j] for j in shuffled], list(range(len(truths)))))
    return rows
