"""Decoding: nucleus (top-p) and top-k sampling, and beam search, batched over images.

open_clip's ``CoCa.generate`` builds on transformers' logits warpers and ``BeamSearchScorer``; the
latter is gone from transformers 5, which disables ``generate`` altogether. The three methods the
papers' captions need are a few lines each on top of the model's forward pass, so they live here and
work with any transformers version.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import torch
from pydantic import Field, TypeAdapter, ValidationError

from workbench.captioners.vocab import COMPACT, Specials
from workbench.config.errors import ConfigError
from workbench.config.files import Strict


class TopP(Strict):
    """Nucleus sampling: draw from the smallest set of tokens whose probability reaches ``p``."""

    method: Literal["top_p"] = "top_p"
    p: float = Field(default=0.9, gt=0, le=1)
    temperature: float = Field(default=1.0, gt=0)


class TopK(Strict):
    """Draw from the ``k`` most probable tokens."""

    method: Literal["top_k"] = "top_k"
    k: int = Field(default=10, gt=0)
    temperature: float = Field(default=1.0, gt=0)


class Beam(Strict):
    """Beam search; the S best finished beams of an image are its S captions (needs beams ≥ S)."""

    method: Literal["beam"] = "beam"
    beams: int = Field(default=4, gt=0)
    length_penalty: float = Field(default=1.0, ge=0)
    """Final scores are log-probability / length ** length_penalty (0 favours short captions)."""


Decoding = Annotated[Union[TopP, TopK, Beam], Field(discriminator="method")]
_ADAPTER = TypeAdapter(Decoding)


def parse_decoding(text: str) -> TopP | TopK | Beam:
    """``METHOD[:KEY=VALUE,...]``, e.g. ``top_p``, ``top_p:p=0.8,temperature=0.7``, ``beam:beams=6``."""
    method, _, rest = text.partition(":")
    fields: dict[str, str] = {"method": method.strip()}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"decoding {text!r}", f"expected KEY=VALUE, got {item!r}")
        fields[key.strip()] = value.strip()
    try:
        return _ADAPTER.validate_python(fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"decoding {text!r}", f"{where}: {first['msg']} (methods: top_p, top_k, beam)") from None


def _next_logits(model: torch.nn.Module, tokens: torch.Tensor, latent: torch.Tensor, embs: torch.Tensor,
                 specials: Specials) -> torch.Tensor:
    """The next token's logits; padding, start (and a compact vocabulary's unknown) are never generated."""
    out = model(None, tokens, image_latent=latent, image_embs=embs, output_labels=False)
    logits = out["logits"][:, -1].float()
    logits[:, list(specials.banned)] = float("-inf")
    return logits


def _filter(logits: torch.Tensor, decoding: TopP | TopK) -> torch.Tensor:
    logits = logits / decoding.temperature
    if isinstance(decoding, TopK):
        k = min(decoding.k, logits.shape[-1])
        threshold = logits.topk(k, dim=-1).values[:, -1:]
        return logits.masked_fill(logits < threshold, float("-inf"))
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    drop = cumulative - sorted_logits.softmax(dim=-1) >= decoding.p  # mass before a token already reaches p
    return logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))


def sample_ids(model, latent: torch.Tensor, embs: torch.Tensor, decoding: TopP | TopK, length: int,
               generator: torch.Generator | None, specials: Specials = COMPACT) -> torch.Tensor:
    """[rows, ≤ length] ids: start, sampled tokens, end (forced at ``length``), padding after the end."""
    rows, device = latent.shape[0], latent.device
    tokens = torch.full((rows, 1), specials.sot, dtype=torch.long, device=device)
    alive = torch.ones(rows, dtype=torch.bool, device=device)
    for position in range(1, length):
        step = torch.full((rows,), specials.pad, dtype=torch.long, device=device)
        index = alive.nonzero().squeeze(1)
        if position == length - 1:  # the last position can only end the caption
            step[index] = specials.eot
        else:
            logits = _filter(_next_logits(model, tokens[index], latent[index], embs[index], specials), decoding)
            # drawn on the CPU: the same generator then gives the same captions on any device
            drawn = torch.multinomial(logits.softmax(dim=-1).cpu(), 1, generator=generator).squeeze(1)
            step[index] = drawn.to(device)
        tokens = torch.cat([tokens, step.unsqueeze(1)], dim=1)
        alive &= step != specials.eot
        if not alive.any():
            break
    return tokens


def beam_ids(model, latent: torch.Tensor, embs: torch.Tensor, decoding: Beam, samples: int,
             length: int, specials: Specials = COMPACT) -> torch.Tensor:
    """[images, samples, ≤ length] ids of the best ``samples`` beams per image.

    A finished beam stays in its slot with its score (it can only be extended by padding, at no
    cost), so finished and open beams compete on log-probability; length normalisation ranks them at
    the end.
    """
    images, beams, device = latent.shape[0], decoding.beams, latent.device
    latent, embs = latent.repeat_interleave(beams, 0), embs.repeat_interleave(beams, 0)
    tokens = torch.full((images * beams, 1), specials.sot, dtype=torch.long, device=device)
    scores = torch.zeros(images, beams, device=device)
    scores[:, 1:] = float("-inf")  # all beams start equal: expand the first only
    lengths = torch.zeros(images * beams, device=device)
    done = torch.zeros(images * beams, dtype=torch.bool, device=device)
    base = (torch.arange(images, device=device) * beams).unsqueeze(1)
    vocab = model.text_decoder.text_projection.shape[1]
    for position in range(1, length):
        logp = torch.full((images * beams, vocab), float("-inf"), device=device)
        open_rows = (~done).nonzero().squeeze(1)
        step_logp = _next_logits(model, tokens[open_rows], latent[open_rows], embs[open_rows],
                                 specials).log_softmax(dim=-1)
        if position == length - 1:  # the last position can only end the caption
            end = step_logp[:, specials.eot].clone()
            step_logp.fill_(float("-inf"))
            step_logp[:, specials.eot] = end
        logp[open_rows] = step_logp
        logp[done, specials.pad] = 0.0
        candidates = (scores.view(-1, 1) + logp).view(images, beams * vocab)
        scores, flat = candidates.topk(beams, dim=1)
        rows = (base + flat // vocab).view(-1)
        step = (flat % vocab).view(-1)
        was_done = done[rows]
        tokens = torch.cat([tokens[rows], step.unsqueeze(1)], dim=1)
        lengths = lengths[rows] + (~was_done).float()
        done = was_done | (step == specials.eot)
        if done.all():
            break
    final = scores / lengths.view(images, beams).clamp(min=1) ** decoding.length_penalty
    best = final.topk(samples, dim=1).indices
    return tokens.view(images, beams, -1).gather(1, best.unsqueeze(-1).expand(-1, -1, tokens.shape[1]))


@torch.no_grad()
def generate_ids(model, pixels: torch.Tensor, decoding: TopP | TopK | Beam, samples: int, length: int,
                 generator: torch.Generator | None = None, specials: Specials = COMPACT) -> torch.Tensor:
    """[images, samples, ≤ length] token ids for normalised ``pixels`` [images, 3, S, S]; ``specials``: the
    vocabulary's start, end, padding and never-generated ids."""
    if isinstance(decoding, Beam) and decoding.beams < samples:
        raise ConfigError("decoding beam", f"beams ({decoding.beams}) must be at least the captions per image "
                                           f"({samples})")
    encoded = model(pixels)
    latent, embs = encoded["image_features"], encoded["image_embs"]
    if isinstance(decoding, Beam):
        return beam_ids(model, latent, embs, decoding, samples, length, specials)
    ids = sample_ids(model, latent.repeat_interleave(samples, 0), embs.repeat_interleave(samples, 0), decoding,
                     length, generator, specials)
    return ids.view(pixels.shape[0], samples, -1)
