"""The reinforcement's shard work: decode an input shard, run every teacher on K augmented views and on
every caption, write the reinforced shard and its sidecar; and the local process pool over shards."""

from __future__ import annotations

import io
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from workbench.augment.policy import AugmentPolicy, apply, compress, sample
from workbench.captioners.generate import read_captions
from workbench.config.errors import ConfigError
from workbench.config.recipe import ReinforceConfig
from workbench.data.arrays import fit_square
from workbench.data.reinforced.shards import (CorruptShardError, encode_npz, iter_tar_samples, syn_key, to_stored,
                                              write_shard)
from workbench.data.shards import shard_key
from workbench.reinforce.plan import ShardJob, zoo_of
from workbench.reinforce.storage import shard_baseline
from workbench.stages.progress import progress_bar
from workbench.teachers.fit import load_teacher
from workbench.workspace import Workspace

TEXT_BATCH = 512


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


def decode_shard(job: ShardJob, size: int) -> tuple[list[str], list[str], np.ndarray]:
    """uids, captions and uint8 [N, size, size, 3] images of one input shard (CorruptShardError if unreadable)."""
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
    uids, truths, images = decode_shard(job, setup.source_size)
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


def load_captions(setup: Setup) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for name, per_dataset in setup.captions.items():
        out[name] = {}
        for path in per_dataset.values():
            out[name].update(read_captions(path))
    return out


def run_jobs(jobs: list[ShardJob], setup: Setup, progress: bool = True) -> list[dict]:
    """Reinforce ``jobs`` in this process (skipping finished ones); return their entries."""
    if setup.threads:
        torch.set_num_threads(setup.threads)
    todo = [job for job in jobs if done(setup.partial, job) is None]
    if not todo:
        return [done(setup.partial, job) for job in jobs]
    teachers = [load_teacher(name, setup.ws, zoo_of(setup.config, setup.holdout)) for name in setup.teachers]
    captions = load_captions(setup)
    bar = progress_bar(total=len(jobs), initial=len(jobs) - len(todo), desc="reinforce", unit=" shards",
                       enabled=progress)
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


def run_workers(jobs: list[ShardJob], setup: Setup, progress: bool) -> None:
    """Reinforce ``jobs`` on ``reinforce.workers`` processes (local, or Ray tasks), each every n-th job."""
    workers = min(setup.config.workers, max(1, len(jobs)))
    if workers == 1 and setup.config.backend == "local":
        run_jobs(jobs, setup, progress)
        return
    threads = setup.threads or max(1, (os.cpu_count() or 1) // workers)
    per_worker = replace(setup, threads=threads)
    if setup.config.backend == "ray":
        _run_on_ray([jobs[w::workers] for w in range(workers)], per_worker, progress)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_jobs, jobs[w::workers], per_worker, progress and w == 0) for w in range(workers)]
        for future in futures:
            future.result()


def _run_on_ray(shares: list[list[ShardJob]], setup: Setup, progress: bool) -> None:
    """One Ray task per share, reserving its threads as CPUs: on the cluster at ``RAY_ADDRESS``, else on a
    Ray started here for the call. A task writes its shards with the same atomic protocol as a local
    worker, into the partial folder every node must see."""
    try:
        import ray
    except ImportError:
        raise ConfigError("reinforce.backend", "ray needs Ray on every node: pip install 'workbench[cluster]' "
                                               "(or ray>=2.9)") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=os.environ.get("RAY_ADDRESS"), num_cpus=None if os.environ.get("RAY_ADDRESS") else
                 max(os.cpu_count() or 1, setup.threads * len(shares)), include_dashboard=False,
                 log_to_driver=False)
    try:
        task = ray.remote(num_cpus=setup.threads)(run_jobs)
        pending = [task.remote(share, setup, False) for share in shares]
        bar = progress_bar(total=len(pending), desc="reinforce (ray tasks)", unit=" tasks", enabled=progress)
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            ray.get(finished)  # a task's error is raised here, naming its shard
            bar.update(1)
        bar.close()
    finally:
        if started_here:
            ray.shutdown()


