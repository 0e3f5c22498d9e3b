"""Figures for captioner runs: loss curves, caption samples (an HTML page and a PNG grid), bar charts.

Everything is written to files that the MLflow run then logs as artifacts; nothing here talks to MLflow.
"""

from __future__ import annotations

import html
import textwrap
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SAMPLE_ZOOM = 128
"""Sample images are shown at this size (micro captioners see 32-48 px)."""


def loss_curves(history: Sequence[dict], path: Path, title: str) -> Path:
    """Train and held-out caption / contrastive losses against the training step."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, part in zip(axes, ("caption", "contrastive")):
        for split, style in (("train", "-"), ("eval", "o-")):
            rows = [(r["step"], r["metrics"][f"{split}/{part}_loss"]) for r in history
                    if f"{split}/{part}_loss" in r["metrics"]]
            if rows:
                steps, values = zip(*rows)
                ax.plot(steps, values, style, label=split, markersize=3)
        ax.set_title(f"{part} loss")
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sample_page(folder: Path, images: np.ndarray, truths: Sequence[str], captions: dict[str, Sequence[Sequence[str]]],
                title: str) -> list[Path]:
    """``samples.html`` + ``samples.png`` + one PNG per image under ``folder``: each image with its
    ground-truth caption and every captioner's captions (``captions[label][i]``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, image in enumerate(images):
        name = f"sample-{i:02d}.png"
        zoomed = Image.fromarray(np.asarray(image)).resize((SAMPLE_ZOOM, SAMPLE_ZOOM), Image.Resampling.NEAREST)
        zoomed.save(folder / name)
        cells = "".join(f"<li><b>{html.escape(label)}</b>: {html.escape(' | '.join(per[i]))}</li>"
                        for label, per in captions.items())
        rows.append(f"<tr><td><img src='{name}' width='{SAMPLE_ZOOM}'></td><td><i>ground truth</i>: "
                    f"{html.escape(truths[i])}<ul>{cells}</ul></td></tr>")
    page = (f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
            f"<h3>{html.escape(title)}</h3><table>{''.join(rows)}</table></body></html>")
    (folder / "samples.html").write_text(page)
    return [folder / "samples.html", _sample_grid(folder / "samples.png", images, truths, captions, title)]


def _sample_grid(path: Path, images: np.ndarray, truths: Sequence[str], captions: dict[str, Sequence[Sequence[str]]],
                 title: str) -> Path:
    columns = 4
    count = len(images)
    grid_rows = max(1, -(-count // columns))
    lines = 2 + 2 * len(captions)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(columns * 4.2, grid_rows * (2.2 + 0.28 * lines)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        ax.imshow(images[i], interpolation="nearest")
        text = [f"GT: {truths[i]}"] + [f"{label}: {' | '.join(per[i])}" for label, per in captions.items()]
        wrapped = "\n".join(textwrap.shorten(line, 90) for line in text)
        ax.set_title(wrapped, fontsize=7, loc="left")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def bar_chart(values: dict[str, dict[str, float]], path: Path, title: str, ylabel: str) -> Path:
    """Grouped bars: one group per outer key, one bar per inner key."""
    groups = list(values)
    series = sorted({s for inner in values.values() for s in inner})
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(groups) * max(1, len(series)) ** 0.5 + 2), 3.8))
    x = np.arange(len(groups))
    for j, name in enumerate(series):
        heights = [values[g].get(name, np.nan) for g in groups]
        ax.bar(x + (j - (len(series) - 1) / 2) * width, heights, width, label=name)
    ax.set_xticks(x, groups, rotation=15, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def length_histogram(lengths: dict[str, Sequence[int]], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    top = max([max(v) for v in lengths.values() if len(v)] + [1])
    bins = np.arange(0.5, top + 1.5)
    for label, values in lengths.items():
        ax.hist(values, bins=bins, histtype="step", density=True, label=label, linewidth=1.5)
    ax.set_xlabel("words per caption")
    ax.set_ylabel("share")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
