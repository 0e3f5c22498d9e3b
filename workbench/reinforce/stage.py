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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from workbench.augment.policy import AugmentPolicy, apply, compress, describe, resolve_policy, sample
from workbench.config.overrides import ConfigError
from workbench.config.recipe import Recipe, ReinforceConfig
from workbench.data.shards import shard_key
from workbench.distributed import rank_and_world
from workbench.reinforce.dataset import MANIFEST, ReinforcedDataset
from workbench.reinforce.shards import CorruptShardError, encode_npz, iter_tar_samples, syn_key, to_stored, write_shard
from workbench.reinforce.storage import render_storage, shard_baseline, storage_report
from workbench.study.cache import StageCache, StageResult, building, stage_key
from workbench.workspace import Workspace

STAGE = "reinforce"
VERSION = 1
EXPERIMENT = "reinforcement"
TEXT_BATCH = 512
CAPTION_BATCH = 64
WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class ShardJob:
    index: int
    dataset: str
    source: Path
    """Input shard of the dataset's train split."""
    name: str
    """Reinforced shard's file name."""


@dataclass(frozen=True)
class Setup:
    """Everything a worker needs, picklable: it loads teachers and captions itself."""

    ws: Workspace
    config: ReinforceConfig
    policy: AugmentPolicy
    teachers: list[str]
    captions: dict[str, dict[str, Path]]
    """captioner → dataset → captions.jsonl."""
    source_size: int
    reference_size: int
    partial: Path
    threads: int
    holdout: bool = False
    """Teachers as a ``data.holdout`` recipe fits them (without the validation slice)."""


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


# ---------------------------------------------------------------------------------------- planning
def resolved_policy(config: ReinforceConfig) -> AugmentPolicy:
    return resolve_policy(config.augment)


def shard_jobs(datasets: list[str], ws: Workspace) -> list[ShardJob]:
    from workbench.data.shards import split_shards

    jobs = []
    for dataset in datasets:
        for source in split_shards(ws.dataset_dir(dataset), "train"):
            name = f"{dataset}-{Path(source).stem}.tar"
            jobs.append(ShardJob(len(jobs), dataset, Path(source), name))
    return jobs


def _stage_config(config: ReinforceConfig) -> dict:
    """The stored content's identity: not the workers, nor the corrupt-shard policy, nor where the zoo
    and registry files are (the teachers' and captioners' own keys are inputs)."""
    tree = config.model_dump(mode="json", exclude={"workers", "on_corrupt", "zoo", "registry"})
    tree["augment"] = resolved_policy(config).model_dump(mode="json")
    if not config.captioners:  # nothing is generated: how many and how are moot
        del tree["captions"], tree["decoding"]
    return tree


def planned_inputs(config: ReinforceConfig, datasets: list[str], ws: Workspace, holdout: bool = False) -> dict:
    """The keys of what the stage reads — teachers, caption sets, datasets — from specs, without
    building anything (datasets must exist: their fingerprints are part of it)."""
    from workbench.captioners.decode import parse_decoding
    from workbench.captioners.fit import captioner_key
    from workbench.captioners.generate import captions_key
    from workbench.study.pipeline import dataset_fingerprints
    from workbench.teachers.fit import teacher_key
    from workbench.teachers.zoo import teacher_spec

    zoo, fingerprints = _zoo(config, holdout), dataset_fingerprints(ws, datasets)
    teachers = {name: teacher_key(name, teacher_spec(name, zoo), ws) for name in config.teachers}
    captions = {}
    if config.captioners:
        registry, decoding = _registry(config, holdout), parse_decoding(config.decoding)
        for name in config.captioners:
            key = captioner_key(name, registry, ws)
            captions[name] = {d: captions_key(key, fingerprints[d], d, "train", config.captions, decoding, None,
                                              config.seed, CAPTION_BATCH) for d in datasets}
    return {"datasets": fingerprints, "teachers": teachers, "captions": captions}


def reinforce_key(recipe: Recipe, ws: Workspace, planned: dict | None = None) -> str:
    """The stage's key for ``recipe``: its reinforce section's content and the keys of its inputs
    (``planned``, from ``planned_inputs``, when already computed)."""
    datasets = list(recipe.data.train)
    config = {"config": _stage_config(recipe.reinforce), "datasets": datasets}
    return stage_key(STAGE, VERSION, config, planned or planned_inputs(recipe.reinforce, datasets, ws,
                                                                             recipe.data.holdout))


def teacher_dim(name: str, config: ReinforceConfig, ws: Workspace) -> int:
    """A teacher's embedding width: from its fit if fitted, else from its spec or model config."""
    from workbench.teachers.fit import teacher_key
    from workbench.teachers.kinds import kind_of
    from workbench.teachers.zoo import teacher_spec

    spec = teacher_spec(name, _zoo(config))
    info = StageCache(ws.cache_dir).path("teacher", teacher_key(name, spec, ws)) / "teacher.json"
    if info.exists():
        return int(json.loads(info.read_text())["embed_dim"])
    return kind_of(spec).embed_dim(name, spec)


TYPICAL_CAPTION_BYTES = 40
"""For estimates before any caption exists (the default captioners average 20–45 bytes)."""


def estimate(recipe: Recipe, ws: Workspace) -> dict:
    """Samples and stored bytes a reinforcement of ``recipe`` will hold, before building it: its
    embeddings at 2 bytes a value, parameters at 4 bytes a number and caption text (about what gzip'd
    shards take: a strong-policy tuxpaint reinforcement stored 0.93 of that sum)."""
    from workbench.augment.policy import stored_numbers
    from workbench.data.shards import read_manifest

    config = recipe.reinforce
    samples = sum(read_manifest(ws.dataset_dir(d))["splits"]["train"]["count"] for d in recipe.data.train)
    width = sum(teacher_dim(name, config, ws) for name in config.teachers)
    synthetic = config.captions * len(config.captioners)
    per_sample = ((config.augmentations + 1 + synthetic) * width * 2
                  + config.augmentations * stored_numbers(resolved_policy(config)) * 4
                  + synthetic * TYPICAL_CAPTION_BYTES)
    return {"samples": samples, "bytes_per_sample": per_sample, "bytes": samples * per_sample,
            "augmented_images": samples * config.augmentations}


def progress_of(recipe: Recipe, ws: Workspace) -> str:
    """'hit', 'resume N/M shards' or 'run' — for ``study plan``."""
    key = reinforce_key(recipe, ws)
    cache = StageCache(ws.cache_dir)
    if cache.has(STAGE, key):
        return "hit"
    jobs = shard_jobs(list(recipe.data.train), ws)
    finished = sum(done(cache.partial_dir(STAGE, key), job) is not None for job in jobs)
    return f"resume {finished}/{len(jobs)} shards" if finished else "run"


# ---------------------------------------------------------------------------------------- one shard
def _decode(job: ShardJob, size: int) -> tuple[list[str], list[str], np.ndarray]:
    """uids, captions and uint8 [N, size, size, 3] images of one input shard (CorruptShardError if unreadable)."""
    import io

    from PIL import Image

    from workbench.data.arrays import fit_square

    uids, captions, images = [], [], []
    for raw in iter_tar_samples(job.source):
        try:
            meta = json.loads(raw["json"])
            image = Image.open(io.BytesIO(raw["png"]))
            images.append(np.asarray(fit_square(image, size)))
            uids.append(meta["uid"])
            captions.append(raw["txt"].decode("utf-8"))
        except Exception as error:  # missing member, undecodable image
            raise CorruptShardError(f"{job.source}: sample {raw.get('__key__')!r} unreadable "
                                    f"({type(error).__name__}: {error})") from None
    if not uids:
        raise CorruptShardError(f"{job.source}: no samples")
    return uids, captions, np.stack(images)


def _shard_generator(seed: int, job: ShardJob, batch: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + job.index) * 1_000_003 + batch)


def _encode_texts(teachers, texts: list[str]) -> dict[str, torch.Tensor]:
    """Each unique string once: synthetic captions repeat across images."""
    unique = sorted(set(texts))
    blocks = []
    for teacher in teachers:
        blocks.append(torch.cat([teacher.encode_texts(unique[i:i + TEXT_BATCH]).float()
                                 for i in range(0, len(unique), TEXT_BATCH)]))
    table = torch.cat(blocks, dim=1)
    return {text: table[i] for i, text in enumerate(unique)}


def reinforce_shard(job: ShardJob, setup: Setup, teachers, captions: dict[str, dict[str, list[str]]]) -> dict:
    """Reinforce one input shard into ``setup.partial / job.name``; return its manifest entry."""
    started = time.perf_counter()
    config, policy = setup.config, setup.policy
    uids, truths, images = _decode(job, setup.source_size)
    pixels_in = torch.from_numpy(images)
    image_blocks, params_rows = [], []
    forward_seconds = 0.0
    for b, first in enumerate(range(0, len(uids), config.batch_size)):
        batch = pixels_in[first:first + config.batch_size]
        generator = _shard_generator(config.seed, job, b)
        views, rows = [], []
        for _ in range(config.augmentations):
            pixels, params = sample(batch, policy, setup.reference_size, generator)
            rows.append(compress(params, policy))
            tick = time.perf_counter()
            blocks = []
            for teacher in teachers:
                seen = pixels if teacher.image_size == setup.reference_size else apply(
                    batch, params, policy, teacher.image_size, None, setup.reference_size)
                blocks.append(teacher.encode_images(seen).float())
            forward_seconds += time.perf_counter() - tick
            views.append(torch.cat(blocks, dim=1))
        image_blocks.append(torch.stack(views, dim=1))  # [B, K, ΣD]
        params_rows += [list(per_image) for per_image in zip(*rows)]
    image_emb = torch.cat(image_blocks)
    synthetic = {name: [captions[name].get(uid, []) for uid in uids] for name in setup.captions}
    tick = time.perf_counter()
    text_table = _encode_texts(teachers, truths + [c for per in synthetic.values() for caps in per for c in caps])
    text_seconds = time.perf_counter() - tick
    width = image_emb.shape[-1]
    samples, rows_stored = [], 0
    for i, uid in enumerate(uids):
        arrays = {"image_emb": to_stored(image_emb[i], config.dtype),
                  "text_emb": to_stored(text_table[truths[i]][None], config.dtype)}
        syn = {}
        for name, per in synthetic.items():
            caps = per[i]
            syn[syn_key(name)] = caps
            stacked = torch.stack([text_table[c] for c in caps]) if caps else torch.zeros(0, width)
            arrays[f"{syn_key(name)}_emb"] = to_stored(stacked, config.dtype)
        rows_stored += sum(len(a) for a in arrays.values())
        samples.append({"__key__": f"{i:06d}_{shard_key(uid)}", "json": {"uid": uid, "dataset": job.dataset},
                        "paug.json": {"param_aug": params_rows[i]}, "syn.json": syn, "npz": encode_npz(arrays)})
    entry = write_shard(setup.partial / job.name, samples, config.compress)
    entry |= {"dataset": job.dataset, "source": job.source.name, "baseline": shard_baseline(
        params_rows, policy, setup.source_size, [caps for per in zip(*synthetic.values()) for caps in per],
        rows_stored * width),
        "seconds": time.perf_counter() - started, "image_forward_seconds": forward_seconds,
        "text_forward_seconds": text_seconds, "augmented_images": len(uids) * config.augmentations}
    _write_sidecar(setup.partial, job, entry)
    return entry


def _sidecar(partial: Path, job: ShardJob) -> Path:
    return partial / f"{job.name}.json"


def _write_sidecar(partial: Path, job: ShardJob, entry: dict) -> None:
    path = _sidecar(partial, job)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, path)


def done(partial: Path, job: ShardJob) -> dict | None:
    """The shard's entry if it was completed (its sidecar is written only after the shard's rename)."""
    path = _sidecar(partial, job)
    return json.loads(path.read_text()) if path.exists() else None


# ---------------------------------------------------------------------------------------- workers
def _load_captions(setup: Setup) -> dict[str, dict[str, list[str]]]:
    from workbench.captioners.generate import read_captions

    out: dict[str, dict[str, list[str]]] = {}
    for name, per_dataset in setup.captions.items():
        out[name] = {}
        for path in per_dataset.values():
            out[name].update(read_captions(path))
    return out


def run_jobs(jobs: list[ShardJob], setup: Setup, progress: bool = True) -> list[dict]:
    """Reinforce ``jobs`` in this process (skipping finished ones); return their entries."""
    from workbench.teachers.fit import load_teacher

    if setup.threads:
        torch.set_num_threads(setup.threads)
    todo = [job for job in jobs if done(setup.partial, job) is None]
    if not todo:
        return [done(setup.partial, job) for job in jobs]
    teachers = [load_teacher(name, setup.ws, _zoo(setup.config, setup.holdout)) for name in setup.teachers]
    captions = _load_captions(setup)
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="reinforce", unit=" shards",
               disable=None if progress else True)
    for job in todo:
        try:
            reinforce_shard(job, setup, teachers, captions)
        except CorruptShardError as error:
            if setup.config.on_corrupt == "fail":
                raise CorruptShardError(f"{error} — rebuild the dataset (`workbench data build "
                                        f"{job.dataset} --force`) or set reinforce.on_corrupt: skip") from None
            _write_sidecar(setup.partial, job, {"name": job.name, "dataset": job.dataset,
                                                "source": job.source.name, "skipped": str(error)})
        bar.update(1)
    bar.close()
    return [done(setup.partial, job) for job in jobs]


def _run_local(jobs: list[ShardJob], setup: Setup, progress: bool) -> None:
    workers = min(setup.config.workers, max(1, len(jobs)))
    if workers == 1:
        run_jobs(jobs, setup, progress)
        return
    threads = setup.threads or max(1, (os.cpu_count() or 1) // workers)
    per_worker = replace(setup, threads=threads)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_jobs, jobs[w::workers], per_worker, progress and w == 0) for w in range(workers)]
        for future in futures:
            future.result()


# ---------------------------------------------------------------------------------------- the stage
def _commit(out: Path, jobs: list[ShardJob], setup: Setup, key: str, datasets: list[str], teachers: list[dict],
            captioners: list[dict]) -> None:
    entries = [done(setup.partial, job) for job in jobs]
    kept = [e for e in entries if "skipped" not in e]
    for entry in kept:
        os.link(setup.partial / entry["name"], out / entry["name"])  # the partial copy survives a failed commit
    config = setup.config
    manifest = {
        "stage": STAGE, "version": VERSION, "key": key, "datasets": datasets, "teachers": teachers,
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


def _zoo(config: ReinforceConfig, holdout: bool = False):
    from workbench.teachers.zoo import load_zoo

    return load_zoo(config.zoo, holdout)


def _registry(config: ReinforceConfig, holdout: bool = False):
    from workbench.captioners.spec import load_registry

    return load_registry(config.registry, holdout)


def _teacher_records(config: ReinforceConfig, ws: Workspace, progress: bool, holdout: bool) -> list[dict]:
    from workbench.teachers.fit import fit_teacher

    records, zoo = [], _zoo(config, holdout)
    for name in config.teachers:
        fitted = fit_teacher(name, ws, zoo, progress=progress)
        records.append({"name": name, "key": fitted.key, "dim": int(fitted.info["embed_dim"]),
                        "logit_scale": float(fitted.info["logit_scale"]),
                        "image_size": int(fitted.info["image_size"])})
    return records


def _captions(config: ReinforceConfig, datasets: list[str], ws: Workspace, progress: bool, holdout: bool
              ) -> tuple[dict[str, dict[str, Path]], list[dict]]:
    """Fit each captioner if needed and caption every train image (the cached ``captions`` stage)."""
    from workbench.captioners.decode import parse_decoding
    from workbench.captioners.fit import fit_captioner, load_captioner
    from workbench.captioners.generate import caption_split

    decoding = parse_decoding(config.decoding)
    paths: dict[str, dict[str, Path]] = {}
    records, registry = [], _registry(config, holdout)
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
    from workbench.study.prepare import ensure_datasets
    from workbench.tracking.mlflow_store import TAG_PREFIX, Tracker, flatten

    config = recipe.reinforce
    if not config.teachers:
        raise ConfigError("reinforce.teachers", "name at least one teacher (`workbench teacher list`)")
    policy = resolved_policy(config)
    datasets = list(recipe.data.train)
    ensure_datasets(datasets, ws.ensure(), progress)
    planned = planned_inputs(config, datasets, ws, recipe.data.holdout)
    key = reinforce_key(recipe, ws, planned)
    cache = StageCache(ws.cache_dir)
    tracker = Tracker(ws)
    tag = f"{TAG_PREFIX}stage.{STAGE}"
    rank, world = rank_and_world()
    cached = cache.has(STAGE, key)
    if cached and (rank or tracker.find_runs(EXPERIMENT, {tag: key})):  # before fitting anything
        return Reinforced(key, cache.path(STAGE, key), True, ReinforcedDataset.open(cache.path(STAGE, key)))
    if rank:  # write this rank's shards, then wait for rank 0 to commit the whole dataset
        _reinforce_shards(config, policy, datasets, planned, key, ws, progress, recipe.data.holdout)
        while not cache.has(STAGE, key):
            time.sleep(WAIT_SECONDS)
        return Reinforced(key, cache.path(STAGE, key), False, ReinforcedDataset.open(cache.path(STAGE, key)))
    tracker.mark_dead_runs_killed(EXPERIMENT)
    tags = {f"{TAG_PREFIX}kind": STAGE, tag: key, f"{TAG_PREFIX}teachers": "+".join(config.teachers)}
    with tracker.tracked_run(EXPERIMENT, f"reinforce {'+'.join(datasets)} × {'+'.join(config.teachers)}", tags) as run_id:
        tracker.log_params(run_id, flatten({"reinforce": _stage_config(config)}) | {"datasets": datasets,
                                                                                    "world_size": world})
        if cached:  # built before, but this MLflow store has no run of it (a fresh store): log it, build nothing
            result = StageResult(STAGE, key, cache.path(STAGE, key), hit=True)
        else:
            commit, started = _reinforce_shards(config, policy, datasets, planned, key, ws, progress,
                                                recipe.data.holdout)
            result = cache.get_or_build(STAGE, key, commit, started)
        dataset = ReinforcedDataset.open(result.path)
        _log(tracker, run_id, result.path, dataset.manifest)
        tracker.set_tags(run_id, {f"{TAG_PREFIX}cache_hit": result.hit})
    return Reinforced(key, result.path, result.hit, dataset, run_id)


def _reinforce_shards(config: ReinforceConfig, policy: AugmentPolicy, datasets: list[str], planned: dict,
                      key: str, ws: Workspace, progress: bool, holdout: bool) -> tuple[Callable[[Path], None], float]:
    """Fit teachers and captioners (or find them), reinforce this rank's shards into the resumable
    partial folder and, on rank 0, wait for the other ranks'; returns the commit of the whole dataset and
    when its shards began."""
    teachers = _teacher_records(config, ws, progress, holdout)
    captions, captioners = _captions(config, datasets, ws, progress, holdout)
    if planned["captions"] != {c["name"]: c["captions"] for c in captioners}:  # a bug, not a user error
        raise RuntimeError("caption sets differ from the ones the stage key was computed for")
    reference = max(t["image_size"] for t in teachers)
    setup = Setup(ws, config, policy, list(config.teachers), captions, source_size=max(128, reference),
                  reference_size=reference, partial=StageCache(ws.cache_dir).partial_dir(STAGE, key), threads=0,
                  holdout=holdout)
    setup.partial.mkdir(parents=True, exist_ok=True)
    started = building(STAGE, key)
    jobs = shard_jobs(datasets, ws)
    rank, world = rank_and_world()
    _run_local([job for job in jobs if job.index % world == rank], setup, progress)
    if rank == 0:
        _wait_for_other_ranks(jobs, setup, progress)
    return lambda out: _commit(out, jobs, setup, key, datasets, teachers, captioners), started


def _wait_for_other_ranks(jobs: list[ShardJob], setup: Setup, progress: bool) -> None:
    missing = [job for job in jobs if done(setup.partial, job) is None]
    if missing and progress:
        print(f"waiting for {len(missing)} shards from other ranks ({missing[0].name}, ...)", flush=True)
    while missing:
        time.sleep(WAIT_SECONDS)
        missing = [job for job in missing if done(setup.partial, job) is None]


def _log(tracker, run_id: str, path: Path, manifest: dict) -> None:
    storage = manifest["storage"]
    metrics = {f"storage/{k}": v for k, v in storage["per_sample"].items()}
    metrics |= {f"storage/baseline_{k}": v for k, v in storage["baseline_per_sample"].items()}
    metrics |= {"storage/ratio_to_baseline": storage["ratio_to_baseline"], "samples": manifest["samples"],
                "shards": len(manifest["shards"]), "skipped_shards": len(manifest["skipped"])}
    metrics |= {f"throughput/{k}": v for k, v in manifest.get("throughput", {}).items()}
    tracker.log_metrics(run_id, metrics, 0)
    tracker.log_file(run_id, path / MANIFEST)
    tracker.log_file(run_id, path / "storage.md")
