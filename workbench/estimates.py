"""Wall-time estimates for ``study plan``, from figures measured on a 2-core CPU.

Each figure says where it was recorded. They are rough (other load, caches and data sizes move them by
tens of percent) and hold for this machine kind only. A GPU training (bf16, as ``--profile paper``) is
priced instead in GPU-hours from its counted FLOPs at an assumed utilisation (``gpu_hours``).
"""

from __future__ import annotations

import functools

from workbench.config.augment import resolve_policy
from workbench.config.recipe import ModelConfig, Recipe
from workbench.data.build import is_built
from workbench.data.shards import read_manifest
from workbench.models.students import count_parameters, create_student
from workbench.workspace import Workspace

CORES = 2
"""The machine the figures were measured on."""

DATA_BUILD_SECONDS = {"glyphs": 70.0, "clipart-web": 60.0, "tuxpaint": 12.0, "emoji": 12.0, "fashion-mnist": 12.0,
                      "digits": 12.0}
"""README "Data": glyphs ≈ 70 s, clip art ≈ 60 s, all six ≈ 3 min (the other four share the rest)."""

TRAIN_SPLIT_SAMPLES = {"clipart-web": 5_400, "glyphs": 41_377, "tuxpaint": 719, "emoji": 1_343}
"""README "Data" table: train split sizes, for stages whose dataset is not built yet (built: its manifest)."""

STUDENT_SAMPLES_PER_CORE_S = {"micro-vit-xs": 1_250.0, "micro-vit-s": 1_180.0}
"""Training throughput on one core. micro-vit-xs: captioner_finetune_sets' distilled trainings on ground
truth only ran 1000 steps × 128 in ~104 s (~1,230 samples/s, two one-thread trials at once, evals
included); teacher_ensembles' 50 trainings of 600 steps × 128 replaying K=4 strong augmentations took 71 s
each (~1,080/s). micro-vit-s: teachers/zoo.yaml's scratch-vit-s rate scaled the same way (565 → 1,180).
Other models: scaled from micro-vit-xs by parameter count."""
SYNTHETIC_CAPTION_SLOWDOWN = 1.5
"""The same trials distilling synthetic captions too (a second caption's text forward and loss):
captioner_finetune_sets' rows with 2 synthetic captions took ~150 s against ~104 s on ground truth only."""
RANDAUGMENT_SLOWDOWN = 1.1
"""Trials whose images go through RandAugment (the strong and datacompdr policies, replayed from storage or
drawn online): teacher_ensembles' trainings replaying K=4 strong augmentations ran at ~1,080 samples/s
against ~1,230 with crops only."""
REFERENCE_STUDENT = "micro-vit-xs"
REFERENCE_PARAMETERS = 1.1e6
"""micro-vit-xs's parameter count (recipes/clip.yaml)."""

ONLINE_KD_SLOWDOWN = 19.6
"""README "Reinforced training": reinforced KD ran 19.6× faster than online KD (bench/train.py); reinforced
KD runs at about plain CLIP's speed (1.10×), so only online KD is scaled."""

EVAL_SECONDS = 2.0
"""evaluate/suite.yaml: the suite takes about 2 s for a 1.1M-parameter micro student on 2 cores."""
SUITE_IMAGES = 9_700
"""evaluate/suite.yaml: ~9.7k images in the default suite (a teacher's score after its fit)."""

LIT_VIEWS_PER_S = {"efficientnet-lite0": 404.0, "efficientnet-lite1": 346.0}
"""Image-tower features per second at 96 px (features pin every core; channels-last, batches of 32), from
the features stage's own stage_cost.json on 2 cores: lite0 93,554 views of clipart-web + glyphs in 231 s
(distill_syncaps' fresh workspace), lite1 84,028 views (the same less the validation slice) in 243 s
(logit_scale_search). With them the plan predicts that study's two-teacher reinforcement (21,600 images
and 5,400 captions through each) at 146 s; it took 145 s. Cost grows with pixels."""
LIT_REFERENCE_SIZE = 96
LIT_TEXT_PER_S = 714.0
"""Caption features per second (all-MiniLM-L6-v2, 2 cores): 46,777 captions in 66 s. Computed once per
text tower and training set, so a second LiT teacher on the same text tower finds them cached (this
estimate counts them for each: at most ~1 min over)."""
LIT_PROJECTION_STEP_SECONDS = 0.09
"""The projections' fit on stored features, 2,000 steps at batch 1,024, with the teacher's score on the
suite: 204 s on 2 cores."""
LIT_PROJECTION_BATCH = 1_024

CAPTIONER_SAMPLES_PER_S = {"micro-coca": 600.0}
"""Captioner fit samples per second, periodic evals included (2 cores, nothing else running): pretraining
clipart-web, 1,500 steps at batch 128, in 304 s (632/s); fine-tuning tuxpaint, 300 at batch 64, in 47 s
(412/s: its evals weigh more)."""
CAPTIONS_PER_S = 480.0
"""Synthetic captions per second (generation pins every core): micro-coca, top-p, S=3 for clip art's 5,400
train images on 2 cores — the clipart-web captioner 16,200 in 37 s, the tuxpaint one 16,200 in 31 s."""

REINFORCE_EFFICIENCY = 0.90
"""README "Dataset reinforcement": reinforcement ran at 0.90 of the teachers' pure forward throughput."""
FORWARD_SPEEDUP = 3.0
"""A forward pass costs about a third of a training step (forward + backward): a scratch teacher
embeds images about 3× faster than it trains on them."""


def cores_used(threads: int) -> int:
    """A stage pinned to ``threads`` torch threads (0: every core) uses this many of the machine's cores."""
    return min(threads, CORES) if threads else CORES


def parallel_trials(threads: int) -> int:
    """Trials ``study run`` runs at once by default: as many as the cores hold at the trials' thread count."""
    return max(1, CORES // cores_used(threads))


def student_samples_per_s(model: str, threads: int, parameters: int | None = None) -> float:
    """Training samples a second of ``model`` pinned to ``threads``."""
    per_core = STUDENT_SAMPLES_PER_CORE_S.get(model)
    if per_core is None:
        per_core = STUDENT_SAMPLES_PER_CORE_S[REFERENCE_STUDENT] * REFERENCE_PARAMETERS / max(parameters or 0, 1.0)
    return per_core * cores_used(threads)


def training_seconds(recipe, parameters: int | None = None) -> float:
    """One student training: its samples at the model's throughput, plus its periodic evals."""
    train = recipe.train
    seconds = train.steps * train.batch_size / student_samples_per_s(recipe.model.name, train.threads, parameters)
    if recipe.reinforce.teachers and recipe.distill.mode == "online":
        seconds *= ONLINE_KD_SLOWDOWN
    if (recipe.reinforce.teachers and recipe.distill.synthetic_weight > 0 and recipe.reinforce.captioners
            and recipe.distill.synthetic_captions != 0):
        seconds *= SYNTHETIC_CAPTION_SLOWDOWN
    if _randaugmented(recipe):
        seconds *= RANDAUGMENT_SLOWDOWN
    return seconds + (train.steps // train.eval_every) * evaluation_seconds(parameters)


def _randaugmented(recipe) -> bool:
    """Whether the images a trial trains on pass through RandAugment: the stored policy of a distilled
    recipe, the online policy of a plain one."""
    if recipe.data.reinforced is not None:
        policy = recipe.data.reinforced.augment
    elif recipe.reinforce.teachers:
        policy = recipe.reinforce.augment
    else:
        policy = recipe.augment.policy if recipe.augment.enabled else None
    return policy is not None and resolve_policy(policy).randaugment_ops > 0


def evaluation_seconds(parameters: int | None = None) -> float:
    """One eval of a student (scaled by its parameters from the micro student's figure)."""
    return EVAL_SECONDS * max(1.0, (parameters or REFERENCE_PARAMETERS) / REFERENCE_PARAMETERS)


def data_build_seconds(name: str) -> float | None:
    return DATA_BUILD_SECONDS.get(name)


def lit_views_per_s(tower: str, image_size: int) -> float:
    return LIT_VIEWS_PER_S[tower] * (LIT_REFERENCE_SIZE / image_size) ** 2


def lit_fit_seconds(spec, rows: int) -> float:
    """A LiT teacher: image features of every view, caption features, projections, then its score on the
    suite."""
    fit = spec.fit
    rows = min(rows, fit.max_train_samples or rows)
    rate = lit_views_per_s(spec.image_tower, spec.image_size)
    projections = fit.steps * LIT_PROJECTION_STEP_SECONDS * min(fit.batch_size, rows) / LIT_PROJECTION_BATCH
    return rows * fit.views / rate + rows / LIT_TEXT_PER_S + projections + SUITE_IMAGES / rate


def captioner_fit_seconds(model: str, fit) -> float | None:
    rate = CAPTIONER_SAMPLES_PER_S.get(model)
    return None if rate is None else fit.steps * fit.batch_size / rate


def caption_seconds(images: int, samples: int) -> float:
    return images * samples / CAPTIONS_PER_S


def reinforce_seconds(augmented_images: int, teacher_rates: list[float | None], texts: int = 0) -> float | None:
    """Every augmented image through every teacher, at ``REINFORCE_EFFICIENCY`` of their forward rates, and
    every caption (ground truth and synthetic) through every teacher's text tower at the MiniLM rate, the
    slowest the zoo ships: reinforced_clip's set (5,400 images, K=8, 6 synthetic captions, lite0-minilm)
    took 178 s, which these rates predict (43,200 images / 404 + 37,800 captions / 714, over 0.90)."""
    if any(rate is None for rate in teacher_rates):
        return None
    return sum(augmented_images / rate + texts / LIT_TEXT_PER_S for rate in teacher_rates) / REINFORCE_EFFICIENCY


def duration(seconds: float | None) -> str:
    """'45 s', '12 min', '2.5 h'; '?' when a stage has no recorded figure."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ------------------------------------------------------------------------ GPU trainings
GPU = "H100"
GPU_BF16_FLOPS = 989e12
"""An NVIDIA H100 SXM's dense bf16 peak, FLOP/s (its datasheet)."""
ASSUMED_UTILISATION = 0.35
"""Share of that peak a large-batch CLIP training sustains: an assumption (not measured by this project), in
the range large ViT trainings report; the hours scale inversely with it."""


def is_gpu_training(recipe: Recipe) -> bool:
    """bf16 is the GPU setting (``train.precision``: fp32 on CPUs, where bf16 matmuls are slower)."""
    return recipe.train.precision == "bf16"


@functools.lru_cache(maxsize=None)
def training_flops_per_sample(model: str) -> float:
    """Forward and backward of one sample, taken as three forwards (the usual rule) of the image tower at its
    native resolution and the text tower at its context, counted by torch's FlopCounterMode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from workbench.models.students import get_tokenizer, image_size_of

    student = create_student(ModelConfig(name=model)).eval()
    size = image_size_of(student)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        student.encode_image(torch.zeros(1, 3, size, size))
        student.encode_text(get_tokenizer(model)(["a photo"]))
    return 3.0 * counter.get_total_flops()


def gpu_hours(recipe: Recipe) -> float:
    """A GPU training's hours on one ``GPU`` at ``ASSUMED_UTILISATION`` (stored teacher embeddings cost the
    student nothing; online teachers are not priced)."""
    samples = recipe.train.steps * recipe.train.batch_size
    return samples * training_flops_per_sample(recipe.model.name) / (GPU_BF16_FLOPS * ASSUMED_UTILISATION) / 3600


# ------------------------------------------------------------------------ from specs and data
@functools.lru_cache(maxsize=None)
def parameter_count(model: str) -> int:
    """A student model's parameters (builds the model once per process)."""
    return count_parameters(create_student(ModelConfig(name=model)))["total"]


def count_if_needed(model: str) -> int | None:
    """The parameter count where an estimate scales by it: models without a recorded throughput."""
    return None if model in STUDENT_SAMPLES_PER_CORE_S else parameter_count(model)


def trial_seconds(recipe: Recipe) -> float:
    """A trial's training and evaluation."""
    count = count_if_needed(recipe.model.name)
    return training_seconds(recipe, count) + evaluation_seconds(count)


def train_count(ws: Workspace, dataset: str) -> int:
    """Train split size: the manifest's once built, else the figure recorded for the source."""
    if is_built(ws, dataset):
        return int(read_manifest(ws.dataset_dir(dataset))["splits"]["train"]["count"])
    return TRAIN_SPLIT_SAMPLES.get(dataset, 0)
