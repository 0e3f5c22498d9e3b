"""What ``study run`` would do: trials, stages to build, cache hits, and a cost estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.augment.policy import describe
from workbench.config.study import load_study
from workbench.study.cache import StageCache
from workbench.study.trials import TrialSpec, expand_grid
from workbench.workspace import Workspace


@dataclass
class PlannedTrial:
    spec: TrialSpec
    train: str   # "hit", "resume@STEP", "run", or "needs data"
    eval: str


@dataclass
class PlannedReinforcement:
    key: str
    state: str   # "hit", "resume N/M shards" or "run"
    label: str
    estimate: dict
    """estimate(): samples, augmented images, bytes."""


@dataclass
class Plan:
    study: str
    profile: str
    trials: list[PlannedTrial]
    datasets_missing: list[str]
    datasets_ready: list[str]
    search_trials: int = 0
    notes: list[str] = field(default_factory=list)
    reinforcements: list[PlannedReinforcement] = field(default_factory=list)

    @property
    def reinforced_bytes(self) -> int:
        return sum(r.estimate["bytes"] for r in self.reinforcements if r.state != "hit")

    @property
    def samples_to_train(self) -> int:
        return sum(t.spec.recipe.train.steps * t.spec.recipe.train.batch_size for t in self.trials
                   if t.train != "hit")

    def stored_bytes(self) -> int:
        """Checkpoints to write: weights (fp32) once for the model, three times while training (AdamW)."""
        from workbench.models.students import count_parameters, create_student

        total, sizes = 0, {}
        for trial in self.trials:
            if trial.train == "hit":
                continue
            name = trial.spec.recipe.model.name
            if name not in sizes:
                sizes[name] = count_parameters(create_student(trial.spec.recipe.model))["total"] * 4
            total += sizes[name] * 4
        return total

    def render(self) -> str:
        lines = [f"study {self.study} (profile {self.profile}): "
                 + (f"{self.search_trials} search trials" if self.search_trials else f"{len(self.trials)} grid trials")]
        lines.append(f"datasets ready: {', '.join(self.datasets_ready) or 'none'}")
        lines.append(f"datasets to build: {', '.join(self.datasets_missing) or 'none'}")
        lines.append("")
        lines.append(f"{'point':12}  {'train':12}  {'eval':6}  trial")
        for t in self.trials:
            lines.append(f"{t.spec.point_id:12}  {t.train:12}  {t.eval:6}  {t.spec.title}")
        hits = sum(t.train == "hit" for t in self.trials)
        lines.append("")
        lines.append(f"cache: {hits}/{len(self.trials)} trainings reused")
        if self.reinforcements:
            lines.append("")
            lines.append(f"{'reinforce':18}  {'state':22}  dataset")
            for r in self.reinforcements:
                e = r.estimate
                lines.append(f"{r.key:18}  {r.state:22}  {r.label}: {e['samples']:,} samples, "
                             f"{e['augmented_images']:,} augmented images, ~{e['bytes'] / 2**20:.1f} MiB "
                             f"({e['bytes_per_sample']:,} B a sample)")
        lines.append(f"cost: {self.samples_to_train:,} samples to train; "
                     f"~{self.stored_bytes() / 2**20:.1f} MiB of checkpoints"
                     + (f" and ~{self.reinforced_bytes / 2**20:.1f} MiB of reinforced shards" if self.reinforcements
                        else "") + " to write")
        lines.extend(self.notes)
        return "\n".join(lines)


def make_plan(path: str | Path, ws: Workspace, profile: str | None = None) -> Plan:
    from workbench.study.pipeline import eval_key, train_key
    from workbench.study.prepare import required_inputs

    study = load_study(path)
    profile = profile or study.profile
    specs = expand_grid(study, path, profile)
    datasets, _ = required_inputs([s.recipe for s in specs])
    ready = sorted(d for d in datasets if (ws.dataset_dir(d) / "manifest.json").exists())
    missing = sorted(datasets - set(ready))
    cache = StageCache(ws.cache_dir)
    planned = []
    for spec in ([] if study.search else specs):
        if set(spec.recipe.data.train) & set(missing):
            planned.append(PlannedTrial(spec, "needs data", "run"))
            continue
        key = train_key(spec.recipe, ws)
        if cache.has("train", key):
            state = "hit"
            evaluated = "hit" if cache.has("eval", eval_key(spec.recipe, ws, key)) else "run"
        else:
            checkpoint = cache.partial_dir("train", key) / "checkpoint.pt"
            state = "run"
            if checkpoint.exists():
                import torch

                state = f"resume@{torch.load(checkpoint, map_location='cpu', weights_only=False)['step']}"
            evaluated = "run"
        planned.append(PlannedTrial(spec, state, evaluated))
    plan = Plan(study.study, profile, planned, missing, ready, study.search.trials if study.search else 0)
    plan.reinforcements = _reinforcements([p.spec.recipe for p in planned if p.train != "needs data"], ws)
    if study.search:
        plan.notes.append("search trials' points are chosen by the sampler as the study runs")
    return plan


def _reinforcements(recipes, ws: Workspace) -> list[PlannedReinforcement]:
    from workbench.reinforce.stage import estimate, progress_of, reinforce_key

    seen: dict[str, PlannedReinforcement] = {}
    for recipe in recipes:
        config = recipe.reinforce
        if not config.teachers or (key := reinforce_key(recipe, ws)) in seen:
            continue
        label = (f"{'+'.join(recipe.data.train)} × {'+'.join(config.teachers)}, "
                 f"K={config.augmentations} ({describe(config.augment)})"
                 + (f", S={config.captions} × {'+'.join(config.captioners)}" if config.captioners else ""))
        seen[key] = PlannedReinforcement(key, progress_of(recipe, ws), label, estimate(recipe, ws))
    return list(seen.values())
