"""A reversible compact vocabulary over open_clip's BPE.

A captioner predicts one logit per vocabulary entry at every position, so the full 49k-entry BPE
vocabulary would make the output layer the bulk of a micro CoCa's work. The students hash BPE ids into
a small table, which cannot be decoded; a captioner must decode, so it keeps a table instead: the BPE
ids that occur in its training captions, each with a compact id, and maps back to BPE ids to decode.
A fine-tune extends its parent's table (old ids unchanged, new tokens appended).

A released CoCa speaks open_clip's whole BPE instead: ``FullVocabulary`` has the same interface over the
49,408 ids (its own start and end ids), and ``load_vocabulary`` reads either from a captioner's vocab.json.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import torch
from open_clip.tokenizer import SimpleTokenizer

PAD, SOT, EOT, UNK = 0, 1, 2, 3
SPECIALS = 4


@dataclass(frozen=True)
class Specials:
    """The ids decoding treats specially: padding, start, end, and those never generated."""

    pad: int
    sot: int
    eot: int
    banned: tuple[int, ...]


COMPACT = Specials(PAD, SOT, EOT, banned=(PAD, SOT, UNK))
_SPACE_BEFORE = re.compile(r"\s+([.,!?;:%)\]}]|'(?:s|t|re|ve|m|ll|d)\b)")
_SPACED_HYPHEN = re.compile(r"(?<=\w) - (?=\w)")


@lru_cache(maxsize=1)
def bpe() -> SimpleTokenizer:
    """open_clip's BPE tokenizer (the one every open_clip CoCa config uses)."""
    return SimpleTokenizer()


def tidy(text: str) -> str:
    """Collapse whitespace, strip, and undo BPE decoding's spaces around punctuation ("bear ." → "bear.",
    "flat - theme" → "flat-theme"). Digits stay apart: the BPE splits numbers into digits and keeps no
    trace of whether they were written together."""
    return _SPACED_HYPHEN.sub("-", _SPACE_BEFORE.sub(r"\1", " ".join(text.split())))


class Vocabulary:
    """Compact ids: 0 pad, 1 start, 2 end, 3 unknown, then BPE ids (most frequent first)."""

    def __init__(self, bpe_ids: Sequence[int], context_length: int):
        self.bpe_ids = list(bpe_ids)
        self.context_length = context_length
        self._compact = {b: i + SPECIALS for i, b in enumerate(self.bpe_ids)}
        if len(self._compact) != len(self.bpe_ids):
            raise ValueError("a vocabulary lists each BPE id once")

    specials = COMPACT

    def __len__(self) -> int:
        return SPECIALS + len(self.bpe_ids)

    def extend(self, captions: Iterable[str], min_count: int = 1) -> "Vocabulary":
        """This table with the new BPE ids of ``captions`` appended (a fine-tune's vocabulary)."""
        return Vocabulary.build(captions, self.context_length, base=self, min_count=min_count)

    @classmethod
    def build(cls, captions: Iterable[str], context_length: int, base: "Vocabulary | None" = None,
              min_count: int = 1) -> "Vocabulary":
        """The BPE ids seen at least ``min_count`` times in ``captions`` (by frequency, then id), after
        ``base``'s ids if extending one."""
        counts = Counter(i for caption in captions for i in bpe().encode(caption))
        known = set(base.bpe_ids) if base else set()
        new = sorted((b for b, n in counts.items() if b not in known and n >= min_count),
                     key=lambda b: (-counts[b], b))
        return cls((base.bpe_ids if base else []) + new, context_length)

    def ids(self, caption: str) -> list[int]:
        """Compact ids of one caption (no start/end), unknown BPE ids as ``UNK``."""
        return [self._compact.get(b, UNK) for b in bpe().encode(caption)]

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """[N, context_length] ids: start, caption (truncated), end, padding — a tokenizer's contract."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = torch.full((len(texts), self.context_length), PAD, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [SOT] + self.ids(text)[: self.context_length - 2] + [EOT]
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of one id sequence: cut at the first end token; start, padding and unknown ids dropped."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if EOT in ids:
            ids = ids[: ids.index(EOT)]
        return tidy(bpe().decode([self.bpe_ids[i - SPECIALS] for i in ids if i >= SPECIALS]))

    def unknown_rate(self, captions: Sequence[str]) -> float:
        """Share of the captions' BPE tokens outside the vocabulary."""
        ids = [i for caption in captions for i in self.ids(caption)]
        return sum(i == UNK for i in ids) / max(1, len(ids))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"context_length": self.context_length, "bpe_ids": self.bpe_ids,
                                          "specials": ["pad", "start", "end", "unknown"]}))

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        state = json.loads(Path(path).read_text())
        return cls(state["bpe_ids"], state["context_length"])


class FullVocabulary:
    """open_clip's whole BPE (what a released CoCa was trained with): ids are the tokenizer's own, nothing is
    unknown, and a fine-tune has no new tokens to add."""

    KIND = "open_clip"

    def __init__(self, context_length: int):
        self.context_length = context_length
        tokenizer = bpe()
        self.specials = Specials(PAD, tokenizer.sot_token_id, tokenizer.eot_token_id,
                                 banned=(PAD, tokenizer.sot_token_id))

    def __len__(self) -> int:
        return bpe().vocab_size

    def extend(self, captions: Iterable[str], min_count: int = 1) -> "FullVocabulary":
        return self

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """[N, context_length] ids: start, caption (truncated), end, padding."""
        return bpe()(texts, context_length=self.context_length)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if self.specials.eot in ids:
            ids = ids[: ids.index(self.specials.eot)]
        return tidy(bpe().decode([i for i in ids if i not in (PAD, self.specials.sot)]))

    def unknown_rate(self, captions: Sequence[str]) -> float:
        return 0.0

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"kind": self.KIND, "context_length": self.context_length}))


def load_vocabulary(path: Path) -> "Vocabulary | FullVocabulary":
    """A captioner's vocabulary file: a compact table, or open_clip's whole BPE."""
    state = json.loads(Path(path).read_text())
    if state.get("kind") == FullVocabulary.KIND:
        return FullVocabulary(state["context_length"])
    return Vocabulary(state["bpe_ids"], state["context_length"])
