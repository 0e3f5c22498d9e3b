"""The ``reinforce`` stage: pay for the teachers and captioners once, store what they know per image.

For every training image: K augmentations (parameters only), every teacher's embedding of each
augmented view, S synthetic captions from each captioner, and every teacher's embedding of the ground
truth and of each synthetic caption (MobileCLIP Sec. 3). Run alone with ``workbench reinforce``; a
study runs it as a stage of every trial that names teachers (and reuses it across seeds and across
training-only axes: its key holds only what it stores).

Work unit: one input shard → one reinforced shard of the same samples. Shards are written atomically
into the stage's partial folder, each with a sidecar entry (count, bytes, sha256); a killed run resumes
at the first missing shard, and a shard is a pure function of its inputs and its index, so a resumed
run writes what an uninterrupted one would. Ranks (RANK / WORLD_SIZE, as torchrun sets them) take
every WORLD_SIZE-th shard, local workers split a rank's shards again; rank 0 commits the artifact
once every shard is there.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.augment.policy import describe
from workbench.captioners.decode import parse_decoding
from workbench.captioners.fit import fit_captioner, load_captioner
from workbench.captioners.generate import caption_split
from workbench.config.overrides import ConfigError
from workbench.config.recipe import Recipe, ReinforceConfig
from workbench.data.build import ensure_datasets
from workbench.distributed import rank_and_world
from workbench.data.reinforced.dataset import MANIFEST, ReinforcedDataset
from workbench.reinforce.plan import (CAPTION_BATCH, EXPERIMENT, REINFORCE, ShardJob, planned_inputs, reinforce_key,
                                      registry_of, resolved_policy, shard_jobs, stage_config, zoo_of)
from workbench.data.reinforced.shards import syn_key
from workbench.reinforce.storage import render_storage, storage_report
from workbench.reinforce.work import Setup, done, run_workers
from workbench.stages.cache import StageCache, building
from workbench.stages.runner import TrackedRun, run_tracked
from workbench.teachers.fit import fit_teacher
from workbench.tracking.mlflow_store import TAG_PREFIX
from workbench.workspace import Workspace

WAIT_SECONDS = 5.0


@dataclass
class Reinforced:
    key: str
    path: Path
    hit: bool
    dataset: ReinforcedDataset
    run_id: str | None = None

    @property
    def manifest(self) -> dict:
        return self.dataset.manifest

    def render(self) -> str:
        m = self.manifest
        teachers = " + ".join(f"{t['name']} ({t['dim']}-d @{t['image_size']}px)" for t in m["teachers"])
        lines = [f"reinforced {'(hit) ' if self.hit else ''}{self.key}: {m['samples']:,} samples in "
                 f"{len(m['shards'])} shards ({len(m['skipped'])} input shards skipped) -> {self.path}",
                 f"teachers: {teachers}; K={m['augmentations']} augmentations ({m['augment']}); "
                 f"captioners: {', '.join(c['name'] for c in m['captioners']) or 'none'} × S={m['captions']}; "
                 f"{m['dtype']}", ""]
        lines.append(render_storage(m["storage"]))
        if m.get("throughput"):
            t = m["throughput"]
            lines.append(f"throughput: {t['augmented_images_per_s']:.1f} augmented images/s; teacher forwards "
                         f"{t['teacher_share']:.1%} of the time ({t['seconds']:.0f} s over all shards)")
        return "\n".join(lines)


def progress_of(recipe: Recipe, ws: Workspace) -> str:
    """'hit', 'resume N/M shards' or 'run' — for ``study plan``."""
    key = reinforce_key(recipe, ws)
    cache = StageCache(ws.cache_dir)
    if cache.has(REINFORCE.name, key):
        return "hit"
    jobs = shard_jobs(list(recipe.data.train), ws)
    finished = sum(done(cache.partial_dir(REINFORCE.name, key), job) is not None for job in jobs)
    return f"resume {finished}/{len(jobs)} shards" if finished else "run"


def _commit(out: Path, jobs: list[ShardJob], setup: Setup, key: str, datasets: list[str], teachers: list[dict],
            captioners: list[dict]) -> None:
    entries = [done(setup.partial, job) for job in jobs]
    kept = [e for e in entries if "skipped" not in e]
    for entry in kept:
        os.link(setup.partial / entry["name"], out / entry["name"])  # the partial copy survives a failed commit
    config = setup.config
    manifest = {
        "stage": REINFORCE.name, "version": REINFORCE.version, "key": key, "datasets": datasets, "teachers": teachers,
        "captioners": captioners, "augmentations": config.augmentations, "captions": config.captions,
        "augment": describe(config.augment),
        "policy": setup.policy.model_dump(mode="json"), "stages": setup.policy.stages,
        "source_size": setup.source_size, "reference_size": setup.reference_size, "dtype": config.dtype,
        "compressed": config.compress, "seed": config.seed, "samples": sum(e["samples"] for e in kept),
        "shards": [{k: e[k] for k in ("name", "dataset", "source", "samples", "bytes", "sha256")} for e in kept],
        "skipped": [{"source": e["source"], "dataset": e["dataset"], "reason": e["skipped"]} for e in entries
                    if "skipped" in e],
    }
    manifest["storage"] = storage_report(kept)
    seconds = sum(e["seconds"] for e in kept)
    if seconds:
        forward = sum(e["image_forward_seconds"] + e["text_forward_seconds"] for e in kept)
        manifest["throughput"] = {"seconds": seconds, "teacher_share": forward / seconds,
                                  "augmented_images_per_s": sum(e["augmented_images"] for e in kept) / seconds}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    (out / "storage.md").write_text(render_storage(manifest["storage"]) + "\n")


def fit_teachers(config: ReinforceConfig, ws: Workspace, progress: bool, holdout: bool) -> list[dict]:
    """Fit (or find) each teacher: what the manifest records of it."""
    records, zoo = [], zoo_of(config, holdout)
    for name in config.teachers:
        fitted = fit_teacher(name, ws, zoo, progress=progress)
        records.append({"name": name, "key": fitted.key, "dim": int(fitted.info["embed_dim"]),
                        "logit_scale": float(fitted.info["logit_scale"]),
                        "image_size": int(fitted.info["image_size"])})
    return records


def fit_captions(config: ReinforceConfig, datasets: list[str], ws: Workspace, progress: bool, holdout: bool
                 ) -> tuple[dict[str, dict[str, Path]], list[dict]]:
    """Fit each captioner if needed and caption every train image (the cached ``captions`` stage)."""
    decoding = parse_decoding(config.decoding)
    paths: dict[str, dict[str, Path]] = {}
    records, registry = [], registry_of(config, holdout)
    for name in config.captioners:
        fit_captioner(name, ws, registry, progress=progress)
        captioner = load_captioner(name, ws, registry)
        sets = {d: caption_split(captioner, ws, d, "train", config.captions, decoding, None, config.seed,
                                 CAPTION_BATCH, progress) for d in datasets}
        paths[name] = {d: s.path / "captions.jsonl" for d, s in sets.items()}
        records.append({"name": name, "key": captioner.key, "syn_key": syn_key(name),
                        "captions": {d: s.key for d, s in sets.items()}})
    return paths, records


def reinforce(recipe: Recipe, ws: Workspace, progress: bool = True) -> Reinforced:
    """Build (or find) the reinforced dataset of ``recipe``'s training sets, logged to MLflow.

    Under torchrun every rank writes its share of the shards; rank 0 commits and logs, the others
    wait for the committed dataset.
    """
    config = recipe.reinforce
    if not config.teachers:
        raise ConfigError("reinforce.teachers", "name at least one teacher (`workbench teacher list`)")
    datasets = list(recipe.data.train)
    ensure_datasets(datasets, ws.ensure(), progress)
    planned = planned_inputs(config, datasets, ws, recipe.data.holdout)
    key = reinforce_key(recipe, ws, planned)
    cache = StageCache(ws.cache_dir)
    shards = _Shards(recipe, datasets, planned, key, ws, progress)
    rank, world = rank_and_world()
    if rank:  # write this rank's shards, then wait for rank 0 to commit the whole dataset
        if not cache.has(REINFORCE.name, key):
            shards.work()
        while not cache.has(REINFORCE.name, key):
            time.sleep(WAIT_SECONDS)
        return Reinforced(key, cache.path(REINFORCE.name, key), not shards.worked,
                          ReinforcedDataset.open(cache.path(REINFORCE.name, key)))

    def log(run: TrackedRun, result) -> None:
        _log(run, result.path, ReinforcedDataset.open(result.path).manifest)

    result, run_id = run_tracked(
        REINFORCE, key, ws, experiment=EXPERIMENT, run_name=f"reinforce {'+'.join(datasets)} × "
        f"{'+'.join(config.teachers)}", tags={f"{TAG_PREFIX}kind": REINFORCE.name,
                                              f"{TAG_PREFIX}teachers": "+".join(config.teachers)},
        params={"reinforce": stage_config(config), "datasets": datasets, "world_size": world},
        work=lambda run: shards.work(), build=lambda out, run: shards.commit(out), log=log)
    return Reinforced(key, result.path, result.hit, ReinforcedDataset.open(result.path), run_id)


class _Shards:
    """This rank's share of the shard work, then (rank 0) the commit of the whole dataset."""

    def __init__(self, recipe: Recipe, datasets: list[str], planned: dict, key: str, ws: Workspace, progress: bool):
        self.recipe, self.datasets, self.planned, self.key, self.ws = recipe, datasets, planned, key, ws
        self.progress, self.worked = progress, False

    def work(self) -> float:
        """Fit teachers and captioners (or find them), reinforce this rank's shards into the resumable
        partial folder and, on rank 0, wait for the other ranks'; returns when the shards began."""
        config, holdout, progress = self.recipe.reinforce, self.recipe.data.holdout, self.progress
        self.teachers = fit_teachers(config, self.ws, progress, holdout)
        captions, self.captioners = fit_captions(config, self.datasets, self.ws, progress, holdout)
        if self.planned["captions"] != {c["name"]: c["captions"] for c in self.captioners}:  # a bug, not a user error
            raise RuntimeError("caption sets differ from the ones the stage key was computed for")
        reference = max(t["image_size"] for t in self.teachers)
        self.setup = Setup(self.ws, config, resolved_policy(config), list(config.teachers), captions,
                           source_size=max(128, reference), reference_size=reference,
                           partial=StageCache(self.ws.cache_dir).partial_dir(REINFORCE.name, self.key), threads=0,
                           holdout=holdout)
        self.setup.partial.mkdir(parents=True, exist_ok=True)
        started = building(REINFORCE.name, self.key)
        self.jobs = shard_jobs(self.datasets, self.ws)
        rank, world = rank_and_world()
        run_workers([job for job in self.jobs if job.index % world == rank], self.setup, progress)
        if rank == 0:
            _wait_for_other_ranks(self.jobs, self.setup, progress)
        self.worked = True
        return started

    def commit(self, out: Path) -> None:
        if not self.worked:  # the lock's loser finds the artifact; anyone else works first
            self.work()
        _commit(out, self.jobs, self.setup, self.key, self.datasets, self.teachers, self.captioners)


def _wait_for_other_ranks(jobs: list[ShardJob], setup: Setup, progress: bool) -> None:
    missing = [job for job in jobs if done(setup.partial, job) is None]
    if missing and progress:
        print(f"waiting for {len(missing)} shards from other ranks ({missing[0].name}, ...)", flush=True)
    while missing:
        time.sleep(WAIT_SECONDS)
        missing = [job for job in missing if done(setup.partial, job) is None]


def _log(run: TrackedRun, path: Path, manifest: dict) -> None:
    tracker, run_id = run.tracker, run.run_id
    storage = manifest["storage"]
    metrics = {f"storage/{k}": v for k, v in storage["per_sample"].items()}
    metrics |= {f"storage/baseline_{k}": v for k, v in storage["baseline_per_sample"].items()}
    metrics |= {"storage/ratio_to_baseline": storage["ratio_to_baseline"], "samples": manifest["samples"],
                "shards": len(manifest["shards"]), "skipped_shards": len(manifest["skipped"])}
    metrics |= {f"throughput/{k}": v for k, v in manifest.get("throughput", {}).items()}
    tracker.log_metrics(run_id, metrics, 0)
    tracker.log_file(run_id, path / MANIFEST)
    tracker.log_file(run_id, path / "storage.md")
