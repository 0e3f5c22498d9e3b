"""open_clip CoCa models sized to a captioner's vocabulary, and the fitted captioner as one object.

The JSON config fixes the architecture; the output layer's width comes from the vocabulary (built from
the training captions), so the same config serves any training set. A fine-tune's larger vocabulary
grows the token embedding and the output projection, keeping every row the parent learned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import open_clip
import torch

from workbench.captioners.vocab import FullVocabulary, Vocabulary, load_vocabulary
from workbench.config.overrides import ConfigError
from workbench.models.students import image_size_of, normalization_of, register_micro_configs

VOCAB_ROWS = "text.token_embedding.weight"      # [vocab, width]
VOCAB_COLUMNS = "text_decoder.text_projection"  # [width, vocab]


def model_config(name: str) -> dict:
    """The open_clip config of a CoCa model name; anything else is an error naming the CoCa configs."""
    register_micro_configs()
    config = open_clip.get_model_config(name)
    if config is None or "multimodal_cfg" not in config:
        known = ", ".join(m for m in open_clip.list_models() if "coca" in m.lower())
        raise ConfigError(f"captioner model {name!r}", f"not an open_clip CoCa config; known: {known}")
    return config


def context_length(name: str) -> int:
    return int(model_config(name)["text_cfg"]["context_length"])


def create_coca(name: str, vocab_size: int, context_length: int | None = None) -> torch.nn.Module:
    """A randomly initialised CoCa ``name`` whose text tower and decoder have ``vocab_size`` entries (and
    ``context_length`` text positions, where given instead of the config's).

    open_clip allocates the decoder's output projection with ``torch.empty`` and never initialises it
    (its ``MultimodalTransformer.init_parameters`` is not called), so a fresh model's logits are
    whatever memory held, NaN included; it gets the normal init that method intends.
    """
    config = model_config(name)
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # quiet "no pretrained"
    context = {} if context_length is None else {"context_length": context_length}
    model = open_clip.create_model(name, pretrained=None,
                                   text_cfg=dict(config["text_cfg"], vocab_size=vocab_size, **context),
                                   multimodal_cfg=dict(config["multimodal_cfg"], vocab_size=vocab_size, **context))
    projection = model.text_decoder.text_projection
    torch.nn.init.normal_(projection, std=projection.shape[0] ** -0.5)
    return model


def load_grown(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a parent's weights into ``model``, whose vocabulary may be larger: the parent's rows (and
    output columns) are copied, the new tokens keep their fresh initialisation."""
    own = model.state_dict()
    merged = dict(state)
    for key, axis in ((VOCAB_ROWS, 0), (VOCAB_COLUMNS, 1)):
        grown, old = own[key].clone(), state[key]
        grown.narrow(axis, 0, old.shape[axis]).copy_(old)
        merged[key] = grown
    model.load_state_dict(merged)


def mean_std(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's normalisation constants as [1, 3, 1, 1] tensors."""
    return tuple(torch.tensor(values).view(1, 3, 1, 1) for values in normalization_of(model))


@dataclass
class Captioner:
    """A fitted captioner: the CoCa, its vocabulary, and how to feed it pixels."""

    name: str
    key: str
    model: torch.nn.Module
    vocab: Vocabulary | FullVocabulary
    model_name: str

    def __post_init__(self) -> None:
        self.image_size = image_size_of(self.model)
        self.mean, self.std = mean_std(self.model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] in [0, 1] → the model's input normalisation."""
        return (pixels - self.mean.to(pixels.device)) / self.std.to(pixels.device)

    @torch.no_grad()
    def caption(self, pixels: torch.Tensor, decoding, samples: int = 1,
                generator: torch.Generator | None = None) -> list[list[str]]:
        """``samples`` decoded captions per image (raw: duplicates are kept)."""
        from workbench.captioners.decode import generate_ids

        self.model.eval()
        pixels = self.normalize(pixels.to(self.device, torch.float32))
        ids = generate_ids(self.model, pixels, decoding, samples, self.vocab.context_length, generator,
                           self.vocab.specials).cpu()
        return [[self.vocab.decode(row) for row in per_image] for per_image in ids]


def save_captioner(model: torch.nn.Module, vocab: Vocabulary | FullVocabulary, model_name: str, out: Path,
                   context_length: int | None = None) -> None:
    """``context_length``: the model's text positions where they differ from its config's."""
    state = {"model": model.state_dict(), "model_name": model_name, "vocab_size": len(vocab)}
    if context_length is not None:
        state["context_length"] = context_length
    torch.save(state, out / "model.pt")
    vocab.save(out / "vocab.json")


def load_captioner_from(artifact: Path, name: str, key: str) -> Captioner:
    """A captioner artifact, on the GPU where there is one."""
    state = torch.load(artifact / "model.pt", map_location="cpu", weights_only=True)
    vocab = load_vocabulary(artifact / "vocab.json")
    model = create_coca(state["model_name"], state["vocab_size"], state.get("context_length"))
    model.load_state_dict(state["model"])
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return Captioner(name, key, model, vocab, state["model_name"])


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    def total(modules: Sequence[torch.nn.Module]) -> int:
        return sum(p.numel() for m in modules for p in m.parameters())

    return {"total": total([model]), "image": total([model.visual]), "text": total([model.text]),
            "decoder": total([model.text_decoder])}
