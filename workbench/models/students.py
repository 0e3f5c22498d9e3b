"""Students: any open_clip model name, plus micro configs small enough to train in minutes on 2 cores.

A micro config is an open_clip JSON in ``workbench/models/configs/`` (adding a variant = adding a file).
Micro text towers use a small vocabulary: the BPE ids of open_clip's tokenizer are hashed into
``vocab_size`` buckets, which keeps the embedding table (and AdamW's work on it) small.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import open_clip
import torch

from workbench.config.recipe import ModelConfig
from workbench.models.encoder import OpenClipEncoder

CONFIG_DIR = Path(__file__).parent / "configs"


@lru_cache(maxsize=1)
def register_micro_configs() -> tuple[str, ...]:
    """Make the micro configs known to open_clip (idempotent); return their names."""
    open_clip.add_model_config(CONFIG_DIR)
    return tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))


def is_captioner(name: str) -> bool:
    """CoCa configs (they have a multimodal decoder) are captioners, not students."""
    return "multimodal_cfg" in (open_clip.get_model_config(name) or {})


def list_students() -> dict[str, list[str]]:
    micro = [m for m in register_micro_configs() if not is_captioner(m)]
    return {"micro": micro, "open_clip": [m for m in open_clip.list_models()
                                          if m not in register_micro_configs() and not is_captioner(m)]}


class HashedTokenizer:
    """open_clip's BPE, with ids folded into a small vocabulary.

    Padding stays 0, start-of-text and end-of-text take the two highest ids (open_clip pools the text
    tower at the argmax id, which must be end-of-text), every other id lands in 1 .. vocab_size - 3.
    """

    def __init__(self, base: open_clip.tokenizer.SimpleTokenizer, vocab_size: int):
        self.base = base
        self.vocab_size = vocab_size
        self.context_length = base.context_length

    def __call__(self, texts: str | list[str]) -> torch.Tensor:
        ids = self.base(texts)
        folded = 1 + (ids - 1) % (self.vocab_size - 3)
        folded = torch.where(ids == 0, 0, folded)
        folded = torch.where(ids == self.base.sot_token_id, self.vocab_size - 2, folded)
        return torch.where(ids == self.base.eot_token_id, self.vocab_size - 1, folded)


def get_tokenizer(name: str):
    register_micro_configs()
    tokenizer = open_clip.get_tokenizer(name)
    config = open_clip.get_model_config(name) or {}
    vocab = config.get("text_cfg", {}).get("vocab_size", 49408)
    if isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer) and vocab < tokenizer.vocab_size:
        return HashedTokenizer(tokenizer, vocab)
    return tokenizer


def create_student(cfg: ModelConfig, logit_scale_init: float | None = None) -> torch.nn.Module:
    """Build the model (random init unless ``pretrained``), output as dicts for the trainer."""
    register_micro_configs()
    if cfg.name not in open_clip.list_models():
        known = ", ".join(register_micro_configs())
        raise ValueError(f"unknown student {cfg.name!r}: use a micro config ({known}) or an open_clip "
                         f"model name (`workbench models` lists them)")
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # quiet "no pretrained"
    model = open_clip.create_model(cfg.name, pretrained=cfg.pretrained, output_dict=True)
    if logit_scale_init is not None:
        with torch.no_grad():
            model.logit_scale.fill_(float(torch.log(torch.tensor(logit_scale_init))))
    return model


def image_size_of(model: torch.nn.Module) -> int:
    size = model.visual.preprocess_cfg["size"] if hasattr(model.visual, "preprocess_cfg") else model.visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def normalization_of(model: torch.nn.Module) -> tuple[Sequence[float], Sequence[float]]:
    """The mean and std an open_clip model's images are normalised with (OpenAI's where its config is silent)."""
    cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    return cfg.get("mean", open_clip.OPENAI_DATASET_MEAN), cfg.get("std", open_clip.OPENAI_DATASET_STD)


def make_encoder(model: torch.nn.Module, name: str) -> OpenClipEncoder:
    return OpenClipEncoder(model, get_tokenizer(name), image_size_of(model), *normalization_of(model))


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    def total(module: torch.nn.Module | None) -> int:
        return sum(p.numel() for p in module.parameters()) if module is not None else 0

    all_params = total(model)
    image = total(model.visual)
    return {"total": all_params, "image": image, "text": all_params - image}


def configured_image_size(name: str) -> int:
    """A model's input resolution from its config, without building it."""
    register_micro_configs()
    config = open_clip.get_model_config(name)
    if config is None:
        raise ValueError(f"unknown student {name!r}")
    size = config["vision_cfg"].get("image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def training_load_size(image_size: int) -> int:
    """Resolution the training set is decoded at: room for crops of micro students, capped for memory."""
    return min(2 * image_size, 128) if image_size < 128 else image_size


def load_trained(path: Path, device: str = "cpu"):
    """Load a ``model.pt`` written by ``train_student`` as an ImageTextEncoder."""
    state = torch.load(path, map_location=device, weights_only=False)
    model = create_student(ModelConfig(name=state["model_name"]))
    model.load_state_dict(state["model"])
    model.eval()
    return make_encoder(model.to(device), state["model_name"])
