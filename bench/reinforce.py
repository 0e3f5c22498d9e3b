"""Reinforcement throughput against the teachers' forwards alone, from interleaved repetitions; storage
against a compact baseline.

    python bench/reinforce.py [--dataset tuxpaint] [--teachers lite0-minilm] [--augmentations 8]
                              [--captioners tuxpaint] [--captions 5] [--shards 1] [--repeats 5] [--out FILE]

The pair, run once per round in a rotated order (bench/interleave.py), in one process at one thread
count (``--threads``):

- reinforcement, end to end: the first ``--shards`` input shards of DATASET's train split reinforced
  for real (decode, sample K augmentations, teacher forwards, caption lookup, text forwards, npz +
  gzip + checksum, atomic write) into a fresh scratch folder each round — never the stage cache;
- the teachers' forwards alone on exactly the batches that reinforcement fed them (rebuilt, untimed,
  by replaying the stored parameters: the same pixels) and on the same unique texts.

Equal: input shards, decoded images, augmentations, teachers, texts, threads. Differs: everything the
reinforcement does besides the forwards. Their throughput ratio (target ≥ 0.85) is that overhead. Every
round's shards must come out byte-identical (checked: the same work each round).

Storage: bytes per sample on disk against the baseline of workbench/reinforce/storage.py (parameters
bit-packed, captions under the best of gzip/bz2/xz, embeddings at 2 bytes); the stored shards are the
released DataCompDR layout. Writes every repetition's figures to one JSON file (path printed).

Needs the dataset built and the teachers (and captioners) fitted in the workspace (WORKBENCH_HOME,
default ./workspace).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import torch

from interleave import provenance, ratio, run_rounds, show_ratio, show_spread, spread, write_json
from workbench.augment.policy import apply, decompress
from workbench.config.recipe import DataConfig, Recipe, ReinforceConfig
from workbench.data.reinforced.shards import read_shard
from workbench.reinforce.plan import resolved_policy, shard_jobs, zoo_of
from workbench.reinforce.stage import fit_captions
from workbench.reinforce.work import TEXT_BATCH, Setup, decode_shard, load_captions, reinforce_shard
from workbench.reinforce.storage import render_storage, storage_report
from workbench.teachers.fit import load_teacher
from workbench.workspace import Workspace

REINFORCE, FORWARDS = "reinforcement, end to end", "teacher forwards alone"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="tuxpaint")
    parser.add_argument("--teachers", nargs="+", default=["lite0-minilm"])
    parser.add_argument("--augmentations", type=int, default=8)
    parser.add_argument("--captioners", nargs="*", default=["tuxpaint"])
    parser.add_argument("--captions", type=int, default=5)
    parser.add_argument("--augment", default="strong")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="rounds (both variants once per round)")
    parser.add_argument("--zoo", help="teacher zoo YAML (default: the built-in zoo)")
    parser.add_argument("--captioner-registry", help="captioner registry YAML (default: the built-in one)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path,
                        help="JSON of every repetition (default: WORKSPACE/bench/reinforce-<time>.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ws = Workspace.resolve()
    config = ReinforceConfig(teachers=args.teachers, augmentations=args.augmentations, captioners=args.captioners,
                             captions=args.captions, augment=args.augment, zoo=args.zoo,
                             registry=args.captioner_registry)
    recipe = Recipe(data=DataConfig(train=[args.dataset]), reinforce=config)
    teachers = [load_teacher(name, ws, zoo_of(config)) for name in config.teachers]  # as the stage, without holdout
    caption_paths, _ = fit_captions(config, recipe.data.train, ws, progress=False, holdout=False)
    reference = max(t.image_size for t in teachers)
    jobs = shard_jobs([args.dataset], ws)[:args.shards]
    with tempfile.TemporaryDirectory() as scratch:
        def setup_in(folder: Path) -> Setup:
            folder.mkdir(parents=True)
            return Setup(ws, config, resolved_policy(config), list(config.teachers), caption_paths,
                         source_size=max(128, reference), reference_size=reference, partial=folder, threads=0)

        stored = setup_in(Path(scratch) / "stored")
        captions = load_captions(stored)
        # once untimed, as the stage calls it: warms both paths up (allocator, oneDNN kernels) and writes
        # the shards whose parameters the forwards replay
        entries = [reinforce_shard(job, stored, teachers, captions) for job in jobs]
        images = sum(e["samples"] for e in entries) * config.augmentations
        rounds = itertools.count(1)

        def reinforcement() -> dict:
            setup = setup_in(Path(scratch) / f"round-{next(rounds)}")
            started = time.perf_counter()
            written = [reinforce_shard(job, setup, teachers, captions) for job in jobs]
            seconds = time.perf_counter() - started
            return {"seconds": seconds, "images_per_s": images / seconds, "sha256": [e["sha256"] for e in written]}

        def forwards() -> dict:
            image_seconds, text_seconds = pure_forwards(jobs, stored, teachers, captions)
            seconds = image_seconds + text_seconds
            return {"seconds": seconds, "images_per_s": images / seconds, "image_seconds": image_seconds,
                    "text_seconds": text_seconds}

        results, orders = run_rounds({REINFORCE: reinforcement, FORWARDS: forwards}, args.repeats)

    same = all(r["sha256"] == [e["sha256"] for e in entries] for r in results[REINFORCE])
    rate = {name: [r["images_per_s"] for r in runs] for name, runs in results.items()}
    summary = {name: spread(values) for name, values in rate.items()}
    throughput = ratio(rate[REINFORCE], rate[FORWARDS])
    image_share = spread([f["image_seconds"] / r["seconds"] for f, r in zip(results[FORWARDS], results[REINFORCE])])
    report = storage_report(entries)
    print(f"\ndataset {args.dataset}: {len(jobs)} shard(s), {images // config.augmentations} images × "
          f"K={config.augmentations} ({args.augment}); teachers {', '.join(config.teachers)}; captioners "
          f"{', '.join(config.captioners) or 'none'} × S={config.captions}; {torch.get_num_threads()} threads")
    print(f"augmented images/s, median of {args.repeats} interleaved rounds:")
    for name, s in summary.items():
        print(f"  {name:28} {show_spread(s)}")
    print(f"throughput ratio (reinforcement / teacher forwards alone): {show_ratio(throughput)}  [target >= 0.85]")
    print(f"  image forwards alone: {show_spread(image_share, 3)} of the reinforcement's time")
    print(f"  shards byte-identical in every round: {'yes' if same else 'NO'}")
    print(render_storage(report))
    print(f"storage ratio (stored / baseline): {report['ratio_to_baseline']:.3f}")
    path = write_json("reinforce", args.out, ws.root, {
        **provenance(vars(args) | {"out": str(args.out or "")}), "orders": orders, "runs": results,
        "images_per_s": summary, "ratio": throughput, "image_forward_share": image_share,
        "identical_shards": same, "storage": report})
    print(f"every repetition: {path}")


def pure_forwards(jobs, setup: Setup, teachers, captions) -> tuple[float, float]:
    """Time the teachers alone on exactly the batches the reinforcement fed them."""
    config = setup.config
    image_seconds = text_seconds = 0.0
    for job in jobs:
        uids, truths, decoded = decode_shard(job, setup.source_size)
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
        synthetic = [c for name in setup.captions for uid in uids for c in captions[name].get(uid, [])]
        texts = sorted(set(truths + synthetic))
        tick = time.perf_counter()
        for teacher in teachers:
            for i in range(0, len(texts), TEXT_BATCH):
                teacher.encode_texts(texts[i:i + TEXT_BATCH])
        text_seconds += time.perf_counter() - tick
    return image_seconds, text_seconds


if __name__ == "__main__":
    main()
