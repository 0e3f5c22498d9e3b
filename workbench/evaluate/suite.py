"""Run an eval suite on one encoder: every task, the headline columns, chance levels and standard errors.

Metric names are flat (``{task}/{metric}`` and the headline column names) so they go to MLflow as they
are. Each value comes with its chance level and binomial standard error, so a report can tell a gap
between students from eval-set noise, and a task nobody beats from one that works.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np
import torch

from workbench.evaluate.data import (DatasetMissingError, RetrievalData, TaskData, ZeroShotData,
                                     encode_images, encode_texts, prepare_task)
from workbench.evaluate.retrieval import score_retrieval
from workbench.evaluate.spec import NEAR_CHANCE_Z, Suite, load_suite
from workbench.evaluate.zeroshot import class_embeddings, score_zeroshot
from workbench.models.encoder import ImageTextEncoder
from workbench.workspace import Workspace
from workbench.stages.progress import progress_bar


@dataclass
class TaskResult:
    name: str
    kind: str
    dataset: str
    domain: str
    primary: str
    n_items: int
    n_classes: int | None
    metrics: dict[str, float]
    chance: dict[str, float]
    stderr: dict[str, float]


@dataclass
class SuiteResult:
    """Flat ``metrics``/``chance``/``stderr`` share keys: ``{task}/{metric}`` and the headline columns."""

    metrics: dict[str, float]
    chance: dict[str, float]
    stderr: dict[str, float]
    tasks: list[TaskResult]
    headline: dict[str, list[str]]
    """Column → the ``{task}/{metric}`` keys it averages."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Task → why it did not run (its dataset is not built)."""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=True)

    def z(self, key: str) -> float:
        """Standard errors above chance."""
        return _z(self.metrics[key], self.chance[key], self.stderr[key])

    def to_table(self) -> str:
        """Headline columns, then each task's metrics (primary marked *) with chance, ±se and z.

        Retrieval rows show the both-ways means; the per-direction recalls are in ``metrics``.
        """
        cells = f"{'value':>7} {'chance':>7} {'±se':>7} {'z':>6} {'':<7}"
        lines = [f"{'column':<22} {cells}  over"]
        for column, keys in self.headline.items():
            lines.append(f"{column:<22} {self._cells(column)}  {len(keys)} tasks: {', '.join(keys)}")
        lines += ["", f"{'task':<22} {'metric':<13} {cells}  {'domain':<9} {'items':>6} {'classes':>7}"]
        for task in self.tasks:
            for metric in (m for m in task.metrics if not m.startswith(("i2t_", "t2i_"))):
                mark = "*" if metric == task.primary else ""
                lines.append(f"{task.name:<22} {metric + mark:<13} {self._cells(f'{task.name}/{metric}')}  "
                             f"{task.domain:<9} {task.n_items:>6} {task.n_classes or '':>7}")
        lines += [f"skipped {name}: {why}" for name, why in self.skipped.items()]
        lines.append(f"z = (value - chance) / se; '~chance' marks z < {NEAR_CHANCE_Z:g}; * = the task's metric "
                     f"in avg. {len(self.tasks)} tasks in {self.seconds:.1f} s.")
        return "\n".join(lines)

    def _cells(self, key: str) -> str:
        z = self.z(key)
        flag = "" if z >= NEAR_CHANCE_Z else "~chance"
        return f"{self.metrics[key]:>7.4f} {self.chance[key]:>7.4f} {self.stderr[key]:>7.4f} {z:>6.1f} {flag:<7}"


def _z(value: float, chance: float, stderr: float) -> float:
    if math.isnan(value) or math.isnan(stderr):
        return math.nan
    if stderr > 0:
        return (value - chance) / stderr
    return math.inf if value > chance else (0.0 if value == chance else -math.inf)


@contextmanager
def _eval_mode(encoder: ImageTextEncoder) -> Iterator[None]:
    """Eval mode for the wrapped model while the suite runs (it runs mid-training), restored after."""
    model = getattr(encoder, "model", None)
    was_training = isinstance(model, torch.nn.Module) and model.training
    if was_training:
        model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        if was_training:
            model.train()


def run_suite(encoder: ImageTextEncoder, ws: Workspace, suite: Suite | None = None, *,
              progress: bool = False, skip_missing: bool = False, batch_size: int = 512,
              chunk_size: int = 1024) -> SuiteResult:
    """Evaluate ``encoder`` on every task of ``suite`` (default: ``suite.yaml``).

    Datasets not built raise one error naming each `workbench data build NAME`, or with
    ``skip_missing`` their tasks are listed in ``skipped``; headline columns then average the tasks that ran.
    """
    suite = suite or load_suite()
    start = time.perf_counter()
    data: dict[str, TaskData] = {}
    skipped: dict[str, str] = {}
    for task in suite.tasks:
        try:
            data[task.name] = prepare_task(task, ws.dataset_dir(task.dataset), encoder.image_size, suite.seed)
        except DatasetMissingError as err:
            skipped[task.name] = str(err)
    if skipped and not skip_missing:
        raise DatasetMissingError("\n".join(dict.fromkeys(skipped.values())))
    results: list[TaskResult] = []
    with _eval_mode(encoder):
        image_emb = _encode_task_images(encoder, data, batch_size)
        for task in progress_bar([t for t in suite.tasks if t.name in data], desc="eval", enabled=progress):
            task_data = data[task.name]
            if isinstance(task_data, ZeroShotData):
                result = _zeroshot(encoder, task.templates, task_data, image_emb[task.name], batch_size)
            else:
                result = _retrieval(encoder, task_data, image_emb[task.name], batch_size, chunk_size)
            results.append(TaskResult(task.name, task.kind, task.dataset, task.domain, task.primary,
                                      n_items=len(task_data.indices), **result))
    return _assemble(suite, results, skipped, time.perf_counter() - start)


def _encode_task_images(encoder: ImageTextEncoder, data: dict[str, TaskData],
                        batch_size: int) -> dict[str, torch.Tensor]:
    """Embed each split's images once, even when several tasks (glyph script, block, retrieval) use them."""
    by_split: dict[tuple, list[str]] = {}
    for name, task_data in data.items():
        by_split.setdefault(task_data.key, []).append(name)
    out: dict[str, torch.Tensor] = {}
    for names in by_split.values():
        rows = np.unique(np.concatenate([data[n].indices for n in names]))
        embedded = encode_images(encoder, data[names[0]].arrays.images, rows, batch_size)
        for name in names:
            out[name] = embedded[torch.from_numpy(np.searchsorted(rows, data[name].indices))]
    return out


def _zeroshot(encoder: ImageTextEncoder, templates: list[str], data: ZeroShotData, image_emb: torch.Tensor,
              batch_size: int) -> dict:
    scores = score_zeroshot(image_emb, class_embeddings(encoder, data.classnames, templates, batch_size),
                            torch.from_numpy(data.labels))
    return dict(n_classes=scores.num_classes,
                metrics={"balanced_acc": scores.balanced_acc, "top1": scores.top1},
                chance={"balanced_acc": scores.chance_balanced_acc, "top1": scores.chance_top1},
                stderr={"balanced_acc": scores.stderr_balanced_acc, "top1": scores.stderr_top1})


def _retrieval(encoder: ImageTextEncoder, data: RetrievalData, image_emb: torch.Tensor, batch_size: int,
               chunk_size: int) -> dict:
    text_emb = encode_texts(encoder, data.captions, batch_size)
    table = score_retrieval(image_emb, text_emb, chunk_size=chunk_size).metrics()
    return dict(n_classes=None, metrics={m: v[0] for m, v in table.items()},
                chance={m: v[1] for m, v in table.items()}, stderr={m: v[2] for m, v in table.items()})


def _assemble(suite: Suite, results: list[TaskResult], skipped: dict[str, str], seconds: float) -> SuiteResult:
    """Flatten task metrics; each headline column = mean over its tasks, se = sqrt(sum se^2) / n."""
    metrics, chance, stderr = {}, {}, {}
    for r in results:
        for metric in r.metrics:
            key = f"{r.name}/{metric}"
            metrics[key], chance[key], stderr[key] = r.metrics[metric], r.chance[metric], r.stderr[metric]
    done = {r.name for r in results}
    headline: dict[str, list[str]] = {}
    for column, spec in suite.headline.items():
        keys = [f"{t.name}/{spec.metric or t.primary}" for t in suite.column_tasks(column) if t.name in done]
        if not keys:
            continue
        headline[column] = keys
        metrics[column] = float(np.mean([metrics[k] for k in keys]))
        chance[column] = float(np.mean([chance[k] for k in keys]))
        stderr[column] = math.sqrt(sum(stderr[k] ** 2 for k in keys)) / len(keys)
    return SuiteResult(metrics, chance, stderr, results, headline, skipped, seconds)
