"""The ``captioner`` stage: pretrain or fine-tune a registry captioner, log it to MLflow, cache it.

Run alone: ``workbench captioner fit clipart-web``, ``workbench captioner finetune tuxpaint``. The
artifact (cache/captioner/<key>/) holds everything needed to caption again — ``model.pt``,
``vocab.json``, ``captioner.json`` — so caption generation only ever calls ``load_captioner``. A
fine-tune's key includes its parent's key: refitting a parent makes new children.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from workbench.captioners.decode import Beam, TopP
from workbench.captioners.figures import loss_curves, sample_page
from workbench.captioners.kinds import CAPTIONER, CaptionerEntry, kind_of, kinds
from workbench.captioners.spec import Registry, captioner_spec, dump_spec, lineage, load_registry, root_model
from workbench.captioners.train import HeldOut
from workbench.config.overrides import ConfigError
from workbench.data.build import ensure_datasets
from workbench.stages.cache import StageCache, StageResult
from workbench.stages.runner import TrackedRun, run_tracked
from workbench.threads import FIT_THREADS, pinned_threads
from workbench.tracking.mlflow_store import TAG_PREFIX
from workbench.workspace import Workspace

EXPERIMENT = "captioners"
SAMPLES = 16
"""Held-out images captioned for a fit's sample figure."""


@dataclass
class FittedCaptioner:
    name: str
    key: str
    path: Path
    hit: bool
    info: dict
    """captioner.json: kind, parent, model, vocabulary, losses, seconds."""

    def describe(self) -> str:
        fit = self.info["fit"]
        final = fit["final"]
        lineage = (f"fine-tune of {self.info['parent']}" if self.info["parent"] else
                   f"released {self.info['model']}" if self.info["kind"] == "openclip" else
                   f"pretrained {self.info['model']}")
        state = f"hit ({self.key}; fitted in" if self.hit else f"fitted ({self.key}) in"
        data = "+".join(self.info["data"]) or "no data of ours"
        return (f"{self.name}: {state} {self.info['seconds']:.0f} s{')' if self.hit else ''}, "
                f"{lineage} on {data}; {fit['steps']} steps ({fit['epochs']} epochs); "
                f"caption loss train {final.get('train/caption_loss', float('nan')):.3f} / held-out "
                f"{final.get('eval/caption_loss', float('nan')):.3f}, contrastive train "
                f"{final.get('train/contrastive_loss', float('nan')):.3f} / held-out "
                f"{final.get('eval/contrastive_loss', float('nan')):.3f}; vocabulary {fit['vocab_size']} "
                f"({fit['new_tokens']} new), {fit['parameters']['total'] / 1e6:.2f}M params -> {self.path}")


def captioner_key(name: str, registry: Registry, ws: Workspace) -> str:
    """Hash of the spec, the model config, the training data's fingerprints and (fine-tunes) the parent's key."""
    spec = captioner_spec(name, registry)
    return kind_of(spec).key(name, spec, registry, ws)


def _build(name: str, key: str, spec: CaptionerEntry, registry: Registry, ws: Workspace, out: Path,
           log, progress: bool) -> None:
    with pinned_threads(FIT_THREADS):
        _fit(name, key, spec, registry, ws, out, log, progress)


def _fit(name: str, key: str, spec: CaptionerEntry, registry: Registry, ws: Workspace, out: Path,
         log, progress: bool) -> None:
    started = time.perf_counter()
    cache = StageCache(ws.cache_dir)
    kind = kind_of(spec)
    parent = (cache.path(CAPTIONER.name, captioner_key(kind.parent(spec), registry, ws))
              if kind.parent(spec) else None)
    model_name = root_model(name, registry)
    captioner, summary = kind.fit(name, key, spec, model_name, ws, out, cache.partial_dir(CAPTIONER.name, key),
                                  parent, log, progress)
    (out / "spec.yaml").write_text(dump_spec(spec))
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines() if line.strip()]
    figures = out / "figures"
    figures.mkdir()
    loss_curves(history, figures / "losses.png", f"captioner {name}")
    if spec.refs:  # a released captioner may name no data to show itself on
        held = HeldOut(ws, spec.refs, captioner.image_size, captioner.vocab, SAMPLES, spec.seed + 1)
        pixels = held.pixels(0, len(held.captions))
        captions = {"beam": captioner.caption(pixels, Beam(beams=4), 1),
                    "top_p": captioner.caption(pixels, TopP(p=0.9), 2, torch.Generator().manual_seed(spec.seed))}
        sample_page(figures / "samples", np.asarray(held.images), held.captions, captions,
                    f"captioner {name}: held-out images of {', '.join(r.describe() for r in spec.refs)}")
    info = {"name": name, "kind": spec.kind, "parent": kind.parent(spec),
            "parent_key": parent.name if parent else None, "model": model_name,
            "data": [ref.describe() for ref in spec.refs], "holdout": spec.holdout,
            "seconds": round(time.perf_counter() - started, 1), "fit": summary}
    (out / "captioner.json").write_text(json.dumps(info, indent=2))


def _read(name: str, key: str, path: Path, hit: bool) -> FittedCaptioner:
    return FittedCaptioner(name, key, path, hit, json.loads((path / "captioner.json").read_text()))


def fit_captioner(name: str, ws: Workspace, registry: Registry | None = None, progress: bool = True,
                  expect: Literal["pretrain", "finetune"] | None = None) -> FittedCaptioner:
    """Fit ``name`` (its ancestors first) or find it in the cache, with an MLflow run in ``captioners``.

    ``expect`` names the kind the caller asked for (the CLI's ``fit`` pretrains, ``finetune``
    continues): a captioner another command builds is an error that names the right command.
    """
    registry = registry or load_registry()
    spec = captioner_spec(name, registry)
    kind = kind_of(spec)
    if expect and kind.command != kinds()[expect].command:
        raise ConfigError(f"captioner {name!r}", f"is a {spec.kind} captioner"
                          + (f" (of {kind.parent(spec)!r})" if kind.parent(spec) else "")
                          + f"; run `workbench captioner {kind.command} {name}`")
    ensure_datasets(set(spec.datasets), ws.ensure(), progress)
    if kind.parent(spec):
        fit_captioner(kind.parent(spec), ws, registry, progress)
    key = captioner_key(name, registry, ws)

    def build(out: Path, run: TrackedRun) -> None:
        _build(name, key, spec, registry, ws, out, run.reporter.log_metrics, progress)

    def log(run: TrackedRun, result: StageResult) -> None:
        _log_fitted(run, _read(name, key, result.path, result.hit))

    result, _ = run_tracked(CAPTIONER, key, ws, experiment=EXPERIMENT, run_name=name,
                            tags={f"{TAG_PREFIX}kind": "captioner", f"{TAG_PREFIX}captioner": name,
                                  f"{TAG_PREFIX}captioner_kind": spec.kind,
                                  f"{TAG_PREFIX}lineage": " > ".join(lineage(name, registry))},
                            params=spec.model_dump(mode="json") | {"model": root_model(name, registry)},
                            build=build, log=log)
    return _read(name, key, result.path, result.hit)


def _log_fitted(run: TrackedRun, fitted: FittedCaptioner) -> None:
    tracker, run_id = run.tracker, run.run_id
    fit = fitted.info["fit"]
    final = {f"final/{k.replace('/', '_')}": v for k, v in fit["final"].items()}
    tracker.log_metrics(run_id, final | {"captioner/vocab_size": fit["vocab_size"],
                                         "captioner/new_tokens": fit["new_tokens"],
                                         "captioner/held_out_unknown_rate": fit["held_out_unknown_rate"],
                                         "captioner/parameters": fit["parameters"]["total"],
                                         "captioner/seconds": fitted.info["seconds"]}, fit["steps"])
    tracker.set_tags(run_id, {f"{TAG_PREFIX}parent_key": fitted.info["parent_key"] or ""})
    for name in ("captioner.json", "spec.yaml", "vocab.json", "history.jsonl"):
        tracker.log_file(run_id, fitted.path / name)
    tracker.log_file(run_id, fitted.path / "figures" / "losses.png", "figures")
    samples = fitted.path / "figures" / "samples"
    for path in sorted(samples.iterdir()) if samples.is_dir() else []:
        tracker.log_file(run_id, path, "figures/samples")


def list_captioners(ws: Workspace, registry_path: Path | None = None) -> str:
    """One line per registry captioner: kind, lineage, data, and whether (and how well) it is fitted."""
    registry = load_registry(registry_path)
    cache = StageCache(ws.cache_dir)
    lines = []
    for name, spec in registry.captioners.items():
        try:
            key = captioner_key(name, registry, ws)
            if cache.has(CAPTIONER.name, key):
                final = _read(name, key, cache.path(CAPTIONER.name, key), True).info["fit"]["final"]
                state = f"fitted ({key}): held-out caption loss {final.get('eval/caption_loss', float('nan')):.3f}"
            else:
                state = "not fitted"
        except (FileNotFoundError, ConfigError):
            state = "not fitted (its data is not built)"
        source = kind_of(spec).describe(spec)
        lines.append(f"{name:16} {state:52} {source} on {' + '.join(r.describe() for r in spec.refs)} "
                     f"({spec.fit.steps} steps, lr {spec.fit.lr:g})")
    return "\n".join(lines)


def load_captioner(name: str, ws: Workspace, registry: Registry | None = None):
    """A fitted captioner from the stage cache; an unfitted one is an error that says how to fit it."""
    registry = registry or load_registry()
    spec = captioner_spec(name, registry)
    key = captioner_key(name, registry, ws)
    path = StageCache(ws.cache_dir).path(CAPTIONER.name, key)
    if not path.is_dir():
        raise ConfigError(f"captioner {name!r}", f"not fitted yet; run `workbench captioner "
                                                 f"{kind_of(spec).command} {name}`")
    return kind_of(spec).load(path, name, key)
