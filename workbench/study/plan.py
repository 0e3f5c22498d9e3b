"""What ``study run`` would do: every stage it will run or reuse, with cache states and estimated wall times.

Stages, in the order a run meets them: data builds, teacher fits, captioner pretrains and fine-tunes,
caption generation, reinforcements (each only where a reinforcement has to be built), then every
trial's training and eval. States and keys come from the functions the stages themselves use; times
from the figures in ``workbench.estimates`` (measured on a 2-core CPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from workbench import estimates
from workbench.captioners.fit import captioner_key
from workbench.captioners.generate import CHUNK
from workbench.captioners.kinds import kind_of as captioner_kind
from workbench.captioners.spec import captioner_spec, lineage, root_model
from workbench.config.augment import describe
from workbench.config.recipe import Recipe
from workbench.data.build import is_built
from workbench.evaluate.stage import eval_key
from workbench.reinforce.plan import estimate, planned_inputs, registry_of, reinforce_key, zoo_of
from workbench.reinforce.stage import progress_of
from workbench.stages.cache import StageCache
from workbench.study.pipeline import planned_train_key
from workbench.study.references import load_checked
from workbench.study.trials import TrialSpec, expand_grid
from workbench.teachers.fit import required_datasets
from workbench.teachers.kinds import kind_of as teacher_kind
from workbench.teachers.zoo import teacher_spec
from workbench.train.loop import CHECKPOINT
from workbench.train.stage import required_inputs
from workbench.workspace import Workspace

STAGE_ORDER = ("data", "teacher", "captioner", "captions", "reinforce")


@dataclass
class PlannedTrial:
    spec: TrialSpec
    train: str   # "hit", "resume@STEP", "run", "needs data", or "=POINT" (trains once, under POINT)
    eval: str
    seconds: float | None = None
    """Estimated training (what is left of it) and eval."""
    key: str = ""
    """The training's stage key ("" while its data is not built): trials with one key train once."""

    @property
    def trains(self) -> bool:
        """Whether this trial's student is trained (or resumed) for it: not a hit, not shared with an
        earlier trial of the plan (a plain control swept over a distillation-only axis has one key)."""
        return self.train != "hit" and not self.train.startswith("=")


@dataclass
class PlannedReinforcement:
    key: str
    state: str   # "hit", "resume N/M shards" or "run"
    label: str
    estimate: dict | None
    """estimate(): samples, augmented images, bytes (None while its data is not built)."""
    recipe: Recipe | None = None
    """A recipe it is built for."""


@dataclass
class PlannedStage:
    """One stage that runs before the trials (data, teacher, captioner, captions, reinforce)."""

    stage: str
    name: str
    state: str   # "hit", "resume ...", "run"
    seconds: float | None
    """Estimated wall time of what is left to do (0 for a hit; None: no recorded figure)."""
    detail: str = ""


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
    stages: list[PlannedStage] = field(default_factory=list)
    parallel: int = 1
    """Trials ``study run`` runs at once by default."""
    search_trial_seconds: float | None = None
    """For a search study: the mean estimated point of its grid (its points are not known in advance) times
    its seeds."""
    search_trial_gpu_hours: float = 0.0
    """The same in GPU-hours, for a search whose trainings are GPU (bf16) trainings."""

    @property
    def reinforced_bytes(self) -> int:
        return sum(r.estimate["bytes"] for r in self.reinforcements if r.state != "hit" and r.estimate)

    @property
    def samples_to_train(self) -> int:
        return sum(t.spec.recipe.train.steps * t.spec.recipe.train.batch_size for t in self.trials if t.trains)

    def stored_bytes(self) -> int:
        """Checkpoints to write: weights (fp32) once for the model, three times while training (AdamW)."""
        return sum(estimates.parameter_count(t.spec.recipe.model.name) * 4 * 4 for t in self.trials if t.trains)

    @property
    def trial_seconds(self) -> float | None:
        if self.search_trials:
            return None if self.search_trial_seconds is None else self.search_trials * self.search_trial_seconds
        times = [t.seconds for t in self.trials]
        return None if None in times else sum(times)

    @property
    def total_seconds(self) -> float:
        """Stages before the trials run one after another; trials ``parallel`` at a time. Unknown: 0."""
        return sum(s.seconds or 0.0 for s in self.stages) + (self.trial_seconds or 0.0) / self.parallel

    def render(self) -> str:
        lines = [f"study {self.study} (profile {self.profile}): "
                 + (f"{self.search_trials} search trials" if self.search_trials else f"{len(self.trials)} grid trials")]
        lines.append(f"datasets ready: {', '.join(self.datasets_ready) or 'none'}")
        lines.append(f"datasets to build: {', '.join(self.datasets_missing) or 'none'}")
        lines.extend(self._render_schedules())
        lines.append("")
        lines.append(f"{'point':12}  {'train':12}  {'eval':6}  {'estimate':>8}  trial")
        for t in self.trials:
            lines.append(f"{t.spec.point_id:12}  {t.train:12}  {t.eval:6}  {estimates.duration(t.seconds):>8}  "
                         f"{t.spec.title}")
        hits = sum(t.train == "hit" for t in self.trials)
        shared = sum(t.train.startswith("=") for t in self.trials)
        lines.append("")
        lines.append(f"cache: {hits}/{len(self.trials)} trainings reused"
                     + (f"; {shared} trials share an earlier trial's training (=POINT)" if shared else ""))
        if self.reinforcements:
            lines.append("")
            lines.append(f"{'reinforce':18}  {'state':22}  dataset")
            for r in self.reinforcements:
                e = r.estimate
                size = (f": {e['samples']:,} samples, {e['augmented_images']:,} augmented images, "
                        f"~{e['bytes'] / 2**20:.1f} MiB ({e['bytes_per_sample']:,} B a sample)" if e
                        else " (sized once its data is built)")
                lines.append(f"{r.key:18}  {r.state:22}  {r.label}{size}")
        lines.append(f"cost: {self.samples_to_train:,} samples to train; "
                     f"~{self.stored_bytes() / 2**20:.1f} MiB of checkpoints"
                     + (f" and ~{self.reinforced_bytes / 2**20:.1f} MiB of reinforced shards"
                        if any(r.estimate for r in self.reinforcements) else "") + " to write")
        lines.extend(self._render_gpu())
        lines.append("")
        lines.extend(self._render_stages())
        lines.extend(self.notes)
        return "\n".join(lines)

    def _render_schedules(self) -> list[str]:
        """One line per distinct student schedule: what the profile and the study's relative keys make."""
        counts: dict[str, int] = {}
        for t in self.trials:
            train = t.spec.recipe.train
            line = (f"{t.spec.recipe.model.name}, {train.steps:,} steps × batch {train.batch_size:,} "
                    f"(warm-up {train.warmup_steps:,}, {train.precision})")
            counts[line] = counts.get(line, 0) + 1
        return [f"training: {line}: {n} trial{'s' * (n != 1)}" for line, n in counts.items()]

    def _render_gpu(self) -> list[str]:
        """GPU trainings (bf16) in GPU-hours from their FLOPs: the CPU wall times do not price them."""
        gpu = [t.spec.recipe for t in self.trials if t.trains and estimates.is_gpu_training(t.spec.recipe)]
        if not gpu:
            return []
        per_sample = ", ".join(f"{m} {estimates.training_flops_per_sample(m) / 1e9:,.0f} GFLOPs a sample"
                               for m in dict.fromkeys(r.model.name for r in gpu))
        hours = sum(estimates.gpu_hours(r) for r in gpu)
        return [f"GPU: ~{hours:,.0f} {estimates.GPU}-hours for {len(gpu)} bf16 training{'s' * (len(gpu) != 1)} "
                f"({per_sample}, forward + backward) at an assumed {estimates.ASSUMED_UTILISATION:.0%} of its "
                f"{estimates.GPU_BF16_FLOPS / 1e12:,.0f} TFLOP/s bf16 peak; the 2-core CPU times below do not "
                "apply to them"]

    def _render_stages(self) -> list[str]:
        rows = [(s.stage, s.name, s.state, estimates.duration(s.seconds), s.detail) for s in self.stages]
        if self.search_trials:
            each = estimates.duration(self.search_trial_seconds)
            rows.append(("train+eval", f"{self.search_trials} search trials", "run",
                         estimates.duration(self.trial_seconds), f"~{each} each"))
        else:
            evals = [0.0 if t.eval in ("hit", "shared") else estimates.evaluation_seconds(estimates.count_if_needed(t.spec.recipe.model.name))
                     for t in self.trials]
            trains = [(t.seconds or 0.0) - e for t, e in zip(self.trials, evals)]
            train_states = ["shared" if t.train.startswith("=") else t.train for t in self.trials]
            for stage, states, seconds in (("train", train_states, trains),
                                           ("eval", [t.eval for t in self.trials], evals)):
                counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
                rows.append((stage, f"{len(states)} trials", counts, estimates.duration(sum(seconds) / self.parallel),
                             f"{self.parallel} at a time ({estimates.duration(sum(seconds))} of trial time)"
                             if self.parallel > 1 else ""))
        unknown = [s for s in self.stages if s.seconds is None]
        lines = ["stages (estimated wall time on a 2-core CPU, from recorded measurements; rough):",
                 f"{'stage':10}  {'name':40}  {'state':26}  {'estimate':>10}  detail"]
        lines += [f"{a:10}  {b:40}  {c:26}  {d:>10}  {e}".rstrip() for a, b, c, d, e in rows]
        lines.append(f"total: ~{estimates.duration(self.total_seconds)} on a 2-core CPU (stages in order, then "
                     f"{self.parallel} trial{'s' * (self.parallel != 1)} at a time)"
                     + (f"; without {len(unknown)} stage(s) that have no recorded figure (?)" if unknown else "")
                     + "; estimates, not measurements")
        return lines


def make_plan(path: str | Path, ws: Workspace, profile: str | None = None) -> Plan:
    study = load_checked(path, ws)
    profile = profile or study.profile
    specs = expand_grid(study, path, profile)
    datasets, _ = required_inputs([s.recipe for s in specs])
    ready = sorted(d for d in datasets if is_built(ws, d))
    missing = sorted(datasets - set(ready))
    cache = StageCache(ws.cache_dir)
    planned: list[PlannedTrial] = []
    first_with: dict[str, str] = {}  # training key -> the point that trains it
    awaiting: dict[str, bool] = {}  # reinforce inputs -> whether a dataset they read is unbuilt
    for spec in ([] if study.search else specs):
        seconds = estimates.trial_seconds(spec.recipe)
        trains_on = [] if spec.recipe.data.reinforced else spec.recipe.data.train  # released: its shards
        if set(trains_on) & set(missing) or _awaits_data(spec.recipe, ws, awaiting):
            planned.append(PlannedTrial(spec, "needs data", "run", seconds))
            continue
        key = planned_train_key(spec.recipe, ws)
        if key in first_with and not cache.has("train", key):
            planned.append(PlannedTrial(spec, f"={first_with[key]}", "shared", 0.0, key))
            continue
        first_with.setdefault(key, spec.point_id)
        if cache.has("train", key):
            state, seconds = "hit", 0.0
            evaluated = "hit" if cache.has("eval", eval_key(spec.recipe, key)) else "run"
            if evaluated == "run":
                seconds = estimates.evaluation_seconds(estimates.count_if_needed(spec.recipe.model.name))
        else:
            step = _checkpoint_step(cache.partial_dir("train", key))
            state, evaluated = (f"resume@{step}", "run") if step else ("run", "run")
            seconds *= 1 - step / spec.recipe.train.steps if step else 1
        planned.append(PlannedTrial(spec, state, evaluated, seconds, key))
    plan = Plan(study.study, profile, planned, missing, ready, study.search.trials if study.search else 0)
    threads = {spec.recipe.train.threads for spec in specs}
    plan.parallel = min(estimates.parallel_trials(t) for t in threads) if threads else 1
    if study.search:
        seeds = len(study.seed_list)  # a search trial trains its point at every seed
        plan.search_trial_seconds = seeds * sum(estimates.trial_seconds(s.recipe) for s in specs) / len(specs)
        plan.search_trial_gpu_hours = seeds * sum(estimates.gpu_hours(s.recipe) for s in specs
                                                  if estimates.is_gpu_training(s.recipe)) / len(specs)
        plan.notes.append(f"search trials' points are chosen by the sampler as the study runs; each trains at "
                          f"{seeds} seed{'s' * (seeds != 1)} and scores their mean")
    recipes = [s.recipe for s in specs]
    plan.reinforcements = _reinforcements(recipes, ws)
    upstream = _upstream(plan.reinforcements, ws, cache)
    plan.datasets_missing = sorted(set(missing) | {s.name for s in upstream if s.stage == "data"})
    plan.stages = ([PlannedStage("data", name, "run", estimates.data_build_seconds(name))
                    for name in plan.datasets_missing]
                   + [s for s in upstream if s.stage != "data"]
                   + [PlannedStage("reinforce", r.key, r.state, _reinforce_seconds(r, ws), r.label)
                      for r in plan.reinforcements])
    return plan


def render_all(plans: list[Plan], fresh: bool) -> str:
    """Several studies' plans as one bill: stages and trainings shared between studies (a teacher fit, a
    reinforcement, a trial two studies define alike) counted once, each study's trials at its own
    parallelism, and the total."""
    shared: dict[tuple[str, str, str], PlannedStage] = {}
    users: dict[tuple[str, str, str], list[str]] = {}
    lines = [f"{'study':24}  {'profile':7}  {'trials':>6}  {'trainings':>9}  {'trial time':>10}  {'stages':>10}"]
    trial_total, gpu_total, trained = 0.0, 0.0, set()
    for plan in plans:
        own = 0.0
        for stage in plan.stages:
            ident = (stage.stage, stage.name, stage.detail)
            if ident not in shared:
                own += stage.seconds or 0.0
            shared.setdefault(ident, stage)
            users.setdefault(ident, []).append(plan.study)
        if plan.search_trials:
            gpu = plan.search_trials * plan.search_trial_gpu_hours
            new, trials = plan.search_trials, 0.0 if gpu else (plan.trial_seconds or 0.0) / plan.parallel
        else:  # a training another study already needs is that study's
            mine = [t for t in plan.trials if (not t.key or t.key not in trained) and not t.train.startswith("=")]
            trained.update(t.key for t in plan.trials if t.key)
            on_gpu = [estimates.is_gpu_training(t.spec.recipe) for t in mine]
            gpu = sum(estimates.gpu_hours(t.spec.recipe) for t, g in zip(mine, on_gpu) if g)
            new, trials = len(mine), sum(t.seconds or 0.0 for t, g in zip(mine, on_gpu) if not g) / plan.parallel
        trial_total, gpu_total = trial_total + trials, gpu_total + gpu
        count = plan.search_trials or len(plan.trials)
        spent = f"{gpu:,.0f} GPU-h" if gpu else estimates.duration(trials)
        lines.append(f"{plan.study:24}  {plan.profile:7}  {count:>6}  {new:>9}  {spent:>10}  "
                     f"{estimates.duration(own):>10}")
    lines += ["", "stages, each counted once (where several studies need one, the first pays):",
              f"{'stage':10}  {'name':40}  {'state':26}  {'estimate':>10}  needed by"]
    for ident, stage in shared.items():
        key = stage.detail.split(":", 1)[0] if ":" in stage.detail else ""  # two fits of one teacher differ here
        name = f"{stage.name} [{key[:8]}]" if key and key != stage.name else stage.name
        lines.append(f"{stage.stage:10}  {name:40}  {stage.state:26}  {estimates.duration(stage.seconds):>10}  "
                     + ", ".join(dict.fromkeys(users[ident])))
    stage_total = sum(stage.seconds or 0.0 for stage in shared.values())
    where = "from a fresh clone (no cached stage; data as built here)" if fresh else "from this workspace"
    lines += ["", f"total {where}: ~{estimates.duration(stage_total + trial_total)} on a 2-core CPU — stages "
              f"~{estimates.duration(stage_total)}, trainings and evals ~{estimates.duration(trial_total)} (each "
              "study's trials at its default parallelism, studies one after another); estimates, not measurements"]
    if gpu_total:
        lines.append(f"GPU trainings (bf16), not in that total: ~{gpu_total:,.0f} {estimates.GPU}-hours from their "
                     f"counted FLOPs at an assumed {estimates.ASSUMED_UTILISATION:.0%} of the GPU's bf16 peak")
    unbuilt = [stage.name for stage in shared.values() if stage.stage == "data" and stage.state == "run"]
    if unbuilt:  # keys that hash the data's content cannot be told apart yet
        lines.append(f"data not built yet ({', '.join(unbuilt)}): stages keyed on its content, such as a "
                     "data.holdout study's own teacher fits, may be counted once where they are several; "
                     "`workbench data build` first for the full bill")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ helpers
def _checkpoint_step(partial: Path) -> int:
    """The step of a resumable checkpoint in a stage's partial folder (0: none)."""
    if not (partial / CHECKPOINT).exists():
        return 0
    return int(torch.load(partial / CHECKPOINT, map_location="cpu", weights_only=False)["step"])


def _sources(recipe: Recipe):
    """The zoo and captioner registry the reinforce stage reads for ``recipe`` (its own lookups: a
    ``data.holdout`` recipe's teachers and captioners are their holdout fits)."""
    config, holdout = recipe.reinforce, recipe.data.holdout
    return zoo_of(config, holdout), (registry_of(config, holdout) if config.captioners else None)


def _reinforcements(recipes: list[Recipe], ws: Workspace) -> list[PlannedReinforcement]:
    distinct = {(tuple(r.data.train), r.reinforce.model_dump_json()): r for r in recipes if r.reinforce.teachers}
    seen: dict[str, PlannedReinforcement] = {}
    for recipe in distinct.values():  # a reinforcement depends on the training sets and reinforce section only
        config = recipe.reinforce
        label = (f"{'+'.join(recipe.data.train)} × {'+'.join(config.teachers)}, "
                 f"K={config.augmentations} ({describe(config.augment)})"
                 + (f", S={config.captions} × {'+'.join(config.captioners)}" if config.captioners else ""))
        if not _keyable(recipe, ws):
            key = f"({'+'.join(recipe.data.train)})"  # keyed once its inputs exist
            if key not in seen:
                seen[key] = PlannedReinforcement(key, "run", label, None, recipe)
            continue
        if (key := reinforce_key(recipe, ws)) not in seen:
            seen[key] = PlannedReinforcement(key, progress_of(recipe, ws), label, estimate(recipe, ws), recipe)
    return list(seen.values())


def _needs(recipe: Recipe, ws: Workspace) -> set[str]:
    """Datasets a reinforcement of ``recipe`` reads: its train sets and its teachers' and captioners' data."""
    config = recipe.reinforce
    zoo, registry = _sources(recipe)
    needed = set(recipe.data.train)
    for name in config.teachers:
        needed |= required_datasets(name, teacher_spec(name, zoo), ws)
    for name in config.captioners:
        for member in lineage(name, registry):
            needed |= set(captioner_spec(member, registry).datasets)
    return needed


def _keyable(recipe: Recipe, ws: Workspace) -> bool:
    return all(is_built(ws, name) for name in _needs(recipe, ws))


def _awaits_data(recipe: Recipe, ws: Workspace, memo: dict[str, bool]) -> bool:
    """Whether a distilled recipe's key must wait for a dataset its teachers or captioners read (memoised
    per reinforce inputs: every seed and training-only point shares them)."""
    if not recipe.reinforce.teachers:
        return False
    inputs = f"{recipe.data.train}{recipe.data.holdout}{recipe.reinforce.model_dump_json()}"
    if inputs not in memo:
        memo[inputs] = not _keyable(recipe, ws)
    return memo[inputs]


def _upstream(reinforcements: list[PlannedReinforcement], ws: Workspace, cache: StageCache) -> list[PlannedStage]:
    """Data builds, teacher fits, captioner fits and caption sets the reinforcements still to build need."""
    stages: dict[tuple[str, str], PlannedStage] = {}
    for reinforcement in reinforcements:
        if reinforcement.state == "hit":
            continue
        recipe = reinforcement.recipe
        for name in sorted(_needs(recipe, ws)):
            if not is_built(ws, name):
                stages.setdefault(("data", name), PlannedStage("data", name, "run", None))
        planned = (planned_inputs(recipe.reinforce, list(recipe.data.train), ws, recipe.data.holdout)
                   if _keyable(recipe, ws) else None)
        for stage in (_teacher_stages(recipe, planned, ws, cache)
                      + _captioner_stages(recipe, planned, ws, cache)):
            stages.setdefault((stage.stage, stage.name, stage.detail), stage)
    return sorted(stages.values(), key=lambda stage: STAGE_ORDER.index(stage.stage))


def _teacher_stages(recipe: Recipe, planned: dict | None, ws: Workspace, cache: StageCache) -> list[PlannedStage]:
    zoo, _ = _sources(recipe)
    stages = []
    for name in recipe.reinforce.teachers:
        spec = teacher_spec(name, zoo)
        key = planned["teachers"][name] if planned else None
        seconds, what = teacher_kind(spec).fit_estimate(name, spec, ws)
        state = "run"
        if key and cache.has("teacher", key):
            state, seconds = "hit", 0.0
        elif key and (resumable := teacher_kind(spec).resumable(name, spec, ws, cache)):
            if step := _checkpoint_step(resumable[0]):
                state, seconds = f"resume@{step}", seconds and seconds * (1 - step / resumable[1])
        stages.append(PlannedStage("teacher", name, state, seconds, f"{key or '(keyed once its data is built)'}: "
                                                                     f"{what}"))
    return stages


def _captioner_stages(recipe: Recipe, planned: dict | None, ws: Workspace, cache: StageCache) -> list[PlannedStage]:
    config = recipe.reinforce
    if not config.captioners:
        return []
    _, registry = _sources(recipe)
    stages = []
    for name in config.captioners:
        for member in lineage(name, registry):
            spec = captioner_spec(member, registry)
            key = captioner_key(member, registry, ws) if planned else None
            seconds = estimates.captioner_fit_seconds(root_model(member, registry), spec.fit)
            state = "run"
            if key and cache.has("captioner", key):
                state, seconds = "hit", 0.0
            elif key and (step := _checkpoint_step(cache.partial_dir("captioner", key))):
                state, seconds = f"resume@{step}", seconds and seconds * (1 - step / spec.fit.steps)
            kind = captioner_kind(spec).stage_label(spec)
            stages.append(PlannedStage("captioner", member, state, seconds,
                                       f"{key or '(keyed once its data is built)'}: {kind}, {spec.fit.steps} steps "
                                       f"at batch {spec.fit.batch_size}"))
        for dataset in recipe.data.train:
            images = estimates.train_count(ws, dataset)
            key = planned["captions"][name][dataset] if planned else None
            seconds, state = estimates.caption_seconds(images, config.captions), "run"
            if key and cache.has("captions", key):
                state, seconds = "hit", 0.0
            elif key and (done := len(list(cache.partial_dir("captions", key).glob("chunk-*.json")))):
                chunks = -(-images // CHUNK)
                state, seconds = f"resume {done}/{chunks} chunks", seconds * (1 - done / max(chunks, 1))
            stages.append(PlannedStage("captions", f"{name} on {dataset}", state, seconds,
                                       f"{key or '(keyed once its data is built)'}: S={config.captions} "
                                       f"({config.decoding}) for {images:,} images"))
    return stages


def _reinforce_seconds(reinforcement: PlannedReinforcement, ws: Workspace) -> float | None:
    """Every augmented image and caption through every teacher; 0 for a hit, the share of shards left for a
    resume."""
    if reinforcement.state == "hit":
        return 0.0
    config = reinforcement.recipe.reinforce
    zoo, _ = _sources(reinforcement.recipe)
    rates: list[float | None] = []
    for name in config.teachers:
        spec = teacher_spec(name, zoo)
        rates.append(teacher_kind(spec).views_per_s(name, spec))
    samples = sum(estimates.train_count(ws, d) for d in reinforcement.recipe.data.train)
    texts = samples * (1 + config.captions * len(config.captioners))
    seconds = estimates.reinforce_seconds(samples * config.augmentations, rates, texts)
    if seconds is not None and reinforcement.state.startswith("resume"):
        done, total = map(int, reinforcement.state.split()[1].split("/"))
        seconds *= 1 - done / max(total, 1)
    return seconds
