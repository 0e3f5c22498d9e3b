"""A shapes dataset in many small shards, a two-teacher zoo (a fitted LiT teacher and an open_clip
checkpoint of another width) and a tiny captioner registry: a real reinforcement in seconds."""

from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch

from tests.conftest import shapes_samples
from workbench.config.recipe import DataConfig, Recipe, ReinforceConfig
from workbench.data.shards import write_dataset
from workbench.models.students import register_micro_configs
from workbench.workspace import Workspace

SHARDS_SUITE = Path(__file__).parents[1] / "suites" / "shards.yaml"  # the shapes tasks over ``shards``

ZOO = """
teachers:
  lite0-tiny:
    kind: lit
    image_tower: efficientnet-lite0
    image_size: 48
    embed_dim: 32
    hidden: 64
    data: [shards]
    suite: {suite}
    fit: {{steps: 20, batch_size: 16, warmup_steps: 5, views: 1}}
  micro-openclip:
    kind: openclip
    model: micro-vit-xs
    pretrained: {checkpoint}
    suite: {suite}
"""

REGISTRY = """
captioners:
  shards-cap:
    kind: pretrain
    model: micro-coca-xs
    data: [shards]
    fit: {steps: 3, batch_size: 16, warmup_steps: 1, log_every: 1, eval_every: 3, eval_samples: 16,
          checkpoint_every: 3}
"""


@pytest.fixture(scope="session")
def reinforce_root(tmp_path_factory) -> Path:
    """Built once: the ``shards`` dataset (shapes, 8 samples a shard), zoo and registry files."""
    register_micro_configs()
    root = tmp_path_factory.mktemp("reinforce")
    ws = Workspace.resolve(root / "ws").ensure()
    write_dataset(ws.dataset_dir("shards"), "shards", shapes_samples(copies=2), eval_fraction=0.25,
                  samples_per_shard=8)
    checkpoint = root / "micro.pt"
    torch.manual_seed(0)
    torch.save(open_clip.create_model("micro-vit-xs").state_dict(), checkpoint)
    (root / "zoo.yaml").write_text(ZOO.format(suite=SHARDS_SUITE, checkpoint=checkpoint))
    (root / "captioners.yaml").write_text(REGISTRY)
    return root


def make_ws(path: Path, reinforce_root: Path) -> Workspace:
    ws = Workspace.resolve(path).ensure()
    (ws.data_dir / "shards").symlink_to(reinforce_root / "ws" / "data" / "shards", target_is_directory=True)
    return ws


@pytest.fixture
def reinforce_ws(reinforce_root: Path, tmp_path: Path) -> Workspace:
    return make_ws(tmp_path / "ws", reinforce_root)


def recipe(root: Path, **reinforce) -> Recipe:
    settings = {"teachers": ["lite0-tiny", "micro-openclip"], "augmentations": 3, "captions": 2,
                "captioners": ["shards-cap"], "zoo": str(root / "zoo.yaml"),
                "registry": str(root / "captioners.yaml"), "batch_size": 8} | reinforce
    return Recipe(data=DataConfig(train=["shards"]), reinforce=ReinforceConfig(**settings))
