"""LiT image-tower throughput: the layout the teachers use (channels-last, batches of 32 on CPU) against
channels-first in batches of 256, from interleaved repetitions.

    python bench/towers.py [--tower efficientnet-lite0] [--size 96] [--images 512] [--repeats 5] [--out FILE]

Both variants embed the same images (seeded uniform pixels; a convolution's cost does not depend on
them) with the same frozen weights at the same thread count; they differ only in memory layout and
batch size. Each round checks that the two give the same features (max abs difference printed). Writes
every repetition's figures to one JSON file (path printed; default workspace/bench/).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from interleave import provenance, ratio, run_rounds, show_ratio, show_spread, spread, write_json
from workbench.teachers.towers import CPU_BATCH, EfficientNetLiteTower
from workbench.workspace import Workspace

CHANNELS_LAST, CHANNELS_FIRST = f"channels-last, batch {CPU_BATCH}", "channels-first, batch 256"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tower", default="efficientnet-lite0")
    parser.add_argument("--size", type=int, default=96, help="image side in pixels (the zoo's teachers: 96)")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5, help="rounds (both variants once per round)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, help="JSON path (default: workspace/bench/towers-<time>.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    tower = EfficientNetLiteTower(args.tower)  # channels-last weights, as the teachers run it
    channels_first = EfficientNetLiteTower(args.tower)
    channels_first.net.to(memory_format=torch.contiguous_format)
    pixels = torch.rand(args.images, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    outputs: dict[str, torch.Tensor] = {}

    def timed(name: str, embed) -> dict:
        with torch.inference_mode():
            started = time.perf_counter()
            outputs[name] = embed()
            seconds = time.perf_counter() - started
        return {"seconds": seconds, "views_per_s": args.images / seconds}

    def first() -> torch.Tensor:
        net, normed = channels_first.net, (pixels - tower.mean) / tower.std
        return torch.cat([net.extract_features(chunk).mean(dim=(2, 3)) for chunk in normed.split(256)])

    with torch.inference_mode():
        tower(pixels[:CPU_BATCH]), first()  # warm-up: allocator, oneDNN primitives
    differences = []

    def last_variant() -> dict:
        return timed(CHANNELS_LAST, lambda: tower(pixels))

    def first_variant() -> dict:
        figures = timed(CHANNELS_FIRST, first)
        if CHANNELS_LAST in outputs:
            differences.append(float((outputs[CHANNELS_LAST] - outputs[CHANNELS_FIRST]).abs().max()))
        return figures

    results, orders = run_rounds({CHANNELS_LAST: last_variant, CHANNELS_FIRST: first_variant}, args.repeats)
    rates = {name: [r["views_per_s"] for r in runs] for name, runs in results.items()}
    speedup = ratio(rates[CHANNELS_LAST], rates[CHANNELS_FIRST])
    print(f"\n{args.tower} at {args.size} px, {args.images} images, {args.threads} threads; "
          f"views/s, median of {args.repeats} interleaved rounds:")
    for name, values in rates.items():
        print(f"  {name:28} {show_spread(spread(values))}")
    print(f"speed-up (channels-last / channels-first): {show_ratio(speedup)}")
    print(f"  max |difference| of the features: {max(differences, default=float('nan')):.2e}")
    path = write_json("towers", args.out, Workspace.resolve().root, {
        **provenance(vars(args) | {"out": str(args.out or "")}), "orders": orders, "runs": results,
        "speedup": speedup, "max_difference": max(differences, default=None)})
    print(f"every repetition: {path}")


if __name__ == "__main__":
    main()
