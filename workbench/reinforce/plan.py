"""The reinforcement's plan: its key, the keys of what it reads, its shard jobs and its cost, from specs
alone (datasets must be built: their fingerprints are part of every key). Builds nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from workbench.augment.policy import AugmentPolicy, resolve_policy, stored_numbers
from workbench.captioners.decode import parse_decoding
from workbench.captioners.fit import captioner_key
from workbench.captioners.generate import captions_key
from workbench.captioners.spec import Registry, load_registry
from workbench.config.recipe import Recipe, ReinforceConfig
from workbench.data.build import dataset_fingerprints
from workbench.data.shards import read_manifest, split_shards
from workbench.stages.cache import StageCache
from workbench.stages.registry import register_stage
from workbench.teachers.fit import teacher_key
from workbench.teachers.kinds import TEACHER, kind_of
from workbench.teachers.zoo import Zoo, load_zoo, teacher_spec
from workbench.workspace import Workspace

REINFORCE = register_stage("reinforce", version=1)
EXPERIMENT = "reinforcement"
CAPTION_BATCH = 64


@dataclass(frozen=True)
class ShardJob:
    index: int
    dataset: str
    source: Path
    """Input shard of the dataset's train split."""
    name: str
    """Reinforced shard's file name."""


def resolved_policy(config: ReinforceConfig) -> AugmentPolicy:
    return resolve_policy(config.augment)


def shard_jobs(datasets: list[str], ws: Workspace) -> list[ShardJob]:
    jobs = []
    for dataset in datasets:
        for source in split_shards(ws.dataset_dir(dataset), "train"):
            name = f"{dataset}-{Path(source).stem}.tar"
            jobs.append(ShardJob(len(jobs), dataset, Path(source), name))
    return jobs


def stage_config(config: ReinforceConfig) -> dict:
    """The stored content's identity: not the workers nor where they run, nor the corrupt-shard policy,
    nor where the zoo and registry files are (the teachers' and captioners' own keys are inputs)."""
    tree = config.model_dump(mode="json", exclude={"workers", "backend", "on_corrupt", "zoo", "registry"})
    tree["augment"] = resolved_policy(config).model_dump(mode="json")
    if not config.captioners:  # nothing is generated: how many and how are moot
        del tree["captions"], tree["decoding"]
    return tree


def planned_inputs(config: ReinforceConfig, datasets: list[str], ws: Workspace, holdout: bool = False) -> dict:
    """The keys of what the stage reads — teachers, caption sets, datasets — from specs, without
    building anything (datasets must exist: their fingerprints are part of it)."""
    zoo, fingerprints = zoo_of(config, holdout), dataset_fingerprints(ws, datasets)
    teachers = {name: teacher_key(name, teacher_spec(name, zoo), ws) for name in config.teachers}
    captions = {}
    if config.captioners:
        registry, decoding = registry_of(config, holdout), parse_decoding(config.decoding)
        for name in config.captioners:
            key = captioner_key(name, registry, ws)
            captions[name] = {d: captions_key(key, fingerprints[d], d, "train", config.captions, decoding, None,
                                              config.seed, CAPTION_BATCH) for d in datasets}
    return {"datasets": fingerprints, "teachers": teachers, "captions": captions}


def reinforce_key(recipe: Recipe, ws: Workspace, planned: dict | None = None) -> str:
    """The stage's key for ``recipe``: its reinforce section's content and the keys of its inputs
    (``planned``, from ``planned_inputs``, when already computed)."""
    datasets = list(recipe.data.train)
    config = {"config": stage_config(recipe.reinforce), "datasets": datasets}
    return REINFORCE.key(config, planned or planned_inputs(recipe.reinforce, datasets, ws, recipe.data.holdout))


def teacher_dim(name: str, config: ReinforceConfig, ws: Workspace) -> int:
    """A teacher's embedding width: from its fit if fitted, else from its spec or model config."""
    spec = teacher_spec(name, zoo_of(config))
    info = StageCache(ws.cache_dir).path(TEACHER.name, teacher_key(name, spec, ws)) / "teacher.json"
    if info.exists():
        return int(json.loads(info.read_text())["embed_dim"])
    return kind_of(spec).embed_dim(name, spec)


TYPICAL_CAPTION_BYTES = 40
"""For estimates before any caption exists (the default captioners average 20–45 bytes)."""


def estimate(recipe: Recipe, ws: Workspace) -> dict:
    """Samples and stored bytes a reinforcement of ``recipe`` will hold, before building it: its
    embeddings at 2 bytes a value, parameters at 4 bytes a number and caption text (about what gzip'd
    shards take: a strong-policy tuxpaint reinforcement stored 0.93 of that sum)."""
    config = recipe.reinforce
    samples = sum(read_manifest(ws.dataset_dir(d))["splits"]["train"]["count"] for d in recipe.data.train)
    width = sum(teacher_dim(name, config, ws) for name in config.teachers)
    synthetic = config.captions * len(config.captioners)
    per_sample = ((config.augmentations + 1 + synthetic) * width * 2
                  + config.augmentations * stored_numbers(resolved_policy(config)) * 4
                  + synthetic * TYPICAL_CAPTION_BYTES)
    return {"samples": samples, "bytes_per_sample": per_sample, "bytes": samples * per_sample,
            "augmented_images": samples * config.augmentations}


def zoo_of(config: ReinforceConfig, holdout: bool = False) -> Zoo:
    return load_zoo(config.zoo, holdout)


def registry_of(config: ReinforceConfig, holdout: bool = False) -> Registry:
    return load_registry(config.registry, holdout)


