"""Interleaved repetitions for the benches: medians with spreads, ratios per round, one JSON of raw figures.

Every variant runs once per round, in an order rotated by one place each round (ABC, BCA, CAB, …), so
a shared machine's drift (other jobs, caches, clocks) falls on every variant alike instead of on
whichever ran last. A variant's summary is the median of its rounds with min–max and interquartile
range; a ratio is the ratio of the medians, with the median and min–max of the per-round ratios (the
two figures of the same round, side by side).
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

MIN_REPEATS = 5


def orders(names: list[str], repeats: int) -> list[list[str]]:
    """The variants' order in each round: rotated by one place per round."""
    return [names[r % len(names):] + names[:r % len(names)] for r in range(repeats)]


def run_rounds(variants: dict[str, Callable[[], dict]], repeats: int) -> tuple[dict[str, list[dict]], list[list[str]]]:
    """Call every variant once per round in the rotated order; each call returns its figures (a dict)."""
    if repeats < MIN_REPEATS:
        print(f"note: {repeats} repetitions; {MIN_REPEATS} or more give a spread worth quoting", flush=True)
    results: dict[str, list[dict]] = {name: [] for name in variants}
    plan = orders(list(variants), repeats)
    for r, order in enumerate(plan):
        for name in order:
            results[name].append(variants[name]())
        print(f"round {r + 1}/{repeats} done ({' → '.join(order)})", flush=True)
    return results, plan


def spread(values: list[float]) -> dict:
    """Median, min, max and quartiles (inclusive method) of one variant's figures."""
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "q1": q1, "q3": q3,
            "n": len(values)}


def ratio(numerators: list[float], denominators: list[float]) -> dict:
    """Ratio of medians, and the spread of the per-round ratios."""
    rounds = [a / b for a, b in zip(numerators, denominators)]
    return {"of_medians": statistics.median(numerators) / statistics.median(denominators),
            "per_round": rounds, **{f"round_{k}": v for k, v in spread(rounds).items() if k != "n"}}


def show_spread(s: dict, digits: int = 1) -> str:
    return (f"{s['median']:.{digits}f} (min–max {s['min']:.{digits}f}–{s['max']:.{digits}f}, "
            f"IQR {s['q1']:.{digits}f}–{s['q3']:.{digits}f}, n={s['n']})")


def show_ratio(r: dict) -> str:
    return (f"{r['of_medians']:.3f} (per-round ratios: median {r['round_median']:.3f}, "
            f"min–max {r['round_min']:.3f}–{r['round_max']:.3f})")


def provenance(config: dict) -> dict:
    """What a reader needs to judge the figures: commit, command, threads, versions, machine."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                    text=True, cwd=Path(__file__).parent).stdout.strip())
    except OSError:
        commit, dirty = "", False
    return {"command": " ".join([Path(sys.executable).name, *sys.argv]), "commit": commit, "dirty": dirty,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "python": sys.version.split()[0],
            "machine": platform.machine(), "processor": platform.processor(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S"), "config": config}


def write_json(bench: str, out: Path | None, workspace: Path, payload: dict) -> Path:
    """Write ``payload`` to ``out`` or to ``workspace/bench/<bench>-<time>.json``; return the path."""
    path = out or workspace / "bench" / f"{bench}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
