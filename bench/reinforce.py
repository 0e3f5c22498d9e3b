"""Reinforcement throughput and storage, as ratios measured in one run.

    python bench/reinforce.py [--dataset tuxpaint] [--teachers lite0-minilm] [--augmentations 8]
                              [--captioners tuxpaint] [--captions 5] [--shards 1]

1. Reinforces the first ``--shards`` input shards of DATASET's train split for real (decode, sample K
   augmentations, teacher forwards, caption lookup, text forwards, npz + gzip + checksum, atomic write)
   into a scratch folder — never the stage cache, so nothing is reused — and times it end to end.
2. Rebuilds the exact pixel batches the teachers saw by replaying the stored parameters (untimed),
   then times the teachers' forwards alone on the same batches: every image forward, and the text
   forwards of the same unique strings.
3. Prints augmented images/s both ways and their ratio (target ≥ 0.85), and stored bytes per sample
   against the raw minimum (target ≤ 1.05).

Needs the dataset built and the teachers (and captioners) fitted in the workspace (WORKBENCH_HOME,
default ./workspace); run teacher fits first, one at a time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from workbench.augment.policy import apply, decompress
from workbench.config.recipe import DataConfig, Recipe, ReinforceConfig
from workbench.reinforce.shards import read_shard
from workbench.reinforce.stage import (TEXT_BATCH, Setup, _captions, _decode, _load_captions, reinforce_shard,
                                       resolved_policy, shard_jobs)
from workbench.reinforce.storage import render_storage, storage_report
from workbench.teachers.fit import load_teacher
from workbench.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="tuxpaint")
    parser.add_argument("--teachers", nargs="+", default=["lite0-minilm"])
    parser.add_argument("--augmentations", type=int, default=8)
    parser.add_argument("--captioners", nargs="*", default=["tuxpaint"])
    parser.add_argument("--captions", type=int, default=5)
    parser.add_argument("--augment", default="strong")
    parser.add_argument("--shards", type=int, default=1)
    args = parser.parse_args()

    ws = Workspace.resolve()
    config = ReinforceConfig(teachers=args.teachers, augmentations=args.augmentations, captioners=args.captioners,
                             captions=args.captions, augment=args.augment)
    recipe = Recipe(data=DataConfig(train=[args.dataset]), reinforce=config)
    teachers = [load_teacher(name, ws) for name in config.teachers]
    caption_paths, _ = _captions(config, recipe.data.train, ws, progress=False)
    reference = max(t.image_size for t in teachers)
    jobs = shard_jobs([args.dataset], ws)[:args.shards]
    with tempfile.TemporaryDirectory() as scratch:
        setup = Setup(ws, config, resolved_policy(config), list(config.teachers), caption_paths,
                      source_size=max(128, reference), reference_size=reference, partial=Path(scratch), threads=0)
        captions = _load_captions(setup)
        with torch.no_grad():  # warm both paths up once (allocator, oneDNN kernels)
            for teacher in teachers:
                teacher.encode_images(torch.rand(8, 3, teacher.image_size, teacher.image_size))
                teacher.encode_texts(["warm up"])
        started = time.perf_counter()
        entries = [reinforce_shard(job, setup, teachers, captions) for job in jobs]
        reinforce_seconds = time.perf_counter() - started
        image_seconds, text_seconds, images = pure_forwards(jobs, setup, teachers, captions)
    pure_seconds = image_seconds + text_seconds
    print(f"dataset {args.dataset}: {len(jobs)} shard(s), {images // config.augmentations} images × "
          f"K={config.augmentations} ({args.augment}); teachers {', '.join(config.teachers)}; "
          f"captioners {', '.join(config.captioners) or 'none'} × S={config.captions}; threads {torch.get_num_threads()}")
    print(f"reinforcement, end to end:       {reinforce_seconds:7.1f} s  {images / reinforce_seconds:8.1f} augmented images/s")
    print(f"teacher forwards alone (img+txt): {pure_seconds:7.1f} s  {images / pure_seconds:8.1f} augmented images/s"
          f"  (image {image_seconds:.1f} s, text {text_seconds:.1f} s)")
    print(f"throughput ratio (reinforcement / pure teacher forwards): {pure_seconds / reinforce_seconds:.3f}  "
          f"[target >= 0.85]")
    print(f"  image forwards only: {image_seconds / reinforce_seconds:.3f} of the reinforcement's time")
    report = storage_report(entries)
    print(render_storage(report))
    print(f"storage ratio (stored / raw minimum): {report['ratio_to_raw']:.3f}  [target <= 1.05]")


def pure_forwards(jobs, setup: Setup, teachers, captions) -> tuple[float, float, int]:
    """Time the teachers alone on exactly the batches the reinforcement fed them."""
    config = setup.config
    image_seconds = text_seconds = 0.0
    images = 0
    for job in jobs:
        uids, truths, decoded = _decode(job, setup.source_size)
        stored = list(read_shard(setup.partial / job.name))
        source = torch.from_numpy(decoded)
        for first in range(0, len(uids), config.batch_size):
            batch = source[first:first + config.batch_size]
            rows = stored[first:first + config.batch_size]
            for k in range(config.augmentations):
                params = decompress([r.param_aug[k] for r in rows], setup.policy)
                views = [apply(batch, params, setup.policy, t.image_size, None, setup.reference_size) for t in teachers]
                tick = time.perf_counter()
                for teacher, view in zip(teachers, views):
                    teacher.encode_images(view)
                image_seconds += time.perf_counter() - tick
                images += len(batch)
        texts = sorted(set(truths + [c for name in setup.captions for uid in uids for c in captions[name].get(uid, [])]))
        tick = time.perf_counter()
        for teacher in teachers:
            for i in range(0, len(texts), TEXT_BATCH):
                teacher.encode_texts(texts[i:i + TEXT_BATCH])
        text_seconds += time.perf_counter() - tick
    return image_seconds, text_seconds, images


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
