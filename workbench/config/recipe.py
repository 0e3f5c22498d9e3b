"""The resolved configuration of one trial. Unknown keys are errors; every default says where it comes from."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from workbench.config.augment import AugmentPolicy, Preset
from workbench.config.files import Strict, suite_path


class ReleasedTeacher(Strict):
    """One teacher block of released reinforced shards, in the order the ``npz`` arrays concatenate them."""

    name: str
    """What ``distill.teachers`` calls it."""
    dim: int = Field(gt=0)
    """Its embedding width (DataCompDR-12M's two ViT-L-14s: 768 each)."""
    logit_scale: float = Field(gt=0)
    """Its own trained logit scale (MobileCLIP2: 70 and 60 for its two DFN teachers)."""


class ReleasedData(Strict):
    """Reinforced shards in Apple's released layout (DataCompDR / DFNDR), joined with their images: each
    sample carries ``jpg`` (or ``png`` / ``webp``), ``txt``, ``paug.json``, ``syn.json`` and ``npz``."""

    shards: list[str] = Field(min_length=1)
    """Shard files or glob patterns (``/data/dcdr/*.tar``)."""
    format: Literal["datacompdr"] = "datacompdr"
    teachers: list[ReleasedTeacher] = Field(min_length=1)
    reference_size: int = Field(default=224, gt=0)
    """The output size the stored augmentations were drawn at (translations scale from it)."""
    augment: Preset | AugmentPolicy = "datacompdr"
    """The policy whose stages ``paug.json`` stores (DataCompDR: random resized crop + RandAugment)."""


class DataConfig(Strict):
    train: list[str] = Field(default=["clipart-web"], min_length=1)
    """Datasets whose train splits are mixed into the training set (built with `workbench data build`)."""
    max_train_samples: int | None = Field(default=None, gt=0)
    """Cap on training samples (first N in a seeded shuffle): for quick runs and data-scaling axes."""
    holdout: bool = False
    """Leave the validation slice (a fixed, group-hashed 10% of every train split) out of training, so a
    recipe can be tuned on the `validation` eval suite without ever looking at the eval split."""

    reinforced: ReleasedData | None = None
    """Train on released reinforced shards (their images, captions, stored augmentations and teacher
    embeddings) instead of reinforcing ``train``, which is then unused; ``distill`` applies as to our own."""

    omitted_at_default: ClassVar[dict[str, object]] = {"holdout": False, "reinforced": None}


class ModelConfig(Strict):
    name: str = "micro-vit-s"
    """A registered micro config (`workbench models`) or any open_clip model name (e.g. MobileCLIP2-S0)."""
    pretrained: str | None = None
    """open_clip pretrained tag or a local checkpoint path; None trains from scratch."""


class AugmentConfig(Strict):
    crop_scale: tuple[float, float] = (0.5, 1.0)
    """RandomResizedCrop area range; MobileCLIP2 Tab. 15 uses (0.08, 1.0) at 256 px."""
    crop_ratio: tuple[float, float] = (0.75, 1.3333)
    """RandomResizedCrop aspect range (Tab. 15)."""
    flip: bool = False
    """Horizontal flips; off by default: a mirrored glyph or a mirrored word is a different picture."""
    enabled: bool = True
    """False trains on the whole image, resized, with no randomness."""
    policy: Preset | AugmentPolicy | None = None
    """Sample a replayable policy (weak, strong, datacompdr or a full policy) at every step instead of
    the crop above — what reinforcement stores, drawn online (MobileCLIP2 Tab. 5's strong augmentation)."""

    omitted_at_default: ClassVar[dict[str, object]] = {"policy": None}


SCALED_STEPS = ("steps", "warmup_steps", "eval_every", "checkpoint_every")
"""The schedule, in steps: train.batch_scale divides these as it multiplies the batch size."""
BUDGET_STEPS = ("steps", "warmup_steps")
"""The learning-rate schedule: train.steps_scale multiplies these (eval and checkpoint intervals stay)."""


class TrainConfig(Strict):
    steps: int = Field(default=2000, gt=0)
    batch_size: int = Field(default=128, gt=1)
    lr: float = Field(default=1e-3, gt=0)            # MobileCLIP2 Sec. 2
    min_lr: float = Field(default=1e-6, ge=0)        # Tab. 15
    weight_decay: float = Field(default=0.2, ge=0)   # Tab. 15
    beta1: float = Field(default=0.9, ge=0, lt=1)    # Tab. 15
    beta2: float = Field(default=0.95, ge=0, lt=1)   # Tab. 15
    warmup_steps: int = Field(default=100, ge=0)
    grad_clip: float | None = Field(default=1.0, gt=0)  # Tab. 15
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16 autocast (Tab. 15 on GPUs); fp32 on CPUs, where bf16 matmuls are slower."""
    logit_scale_init: float = Field(default=1 / 0.07, gt=0)  # CLIP's initial temperature 0.07
    logit_scale_max: float = Field(default=100.0, gt=0)      # CLIP's clamp
    threads: int = Field(default=0, ge=0)
    """torch CPU threads for the trial's training and eval (0: every core of the machine). Part of the recipe,
    so of the key: a trial's numbers never depend on how many trials ran beside it (`study run --workers`)."""
    omitted_at_default: ClassVar[dict[str, object]] = {"accumulate": 1, "ema": None, "batch_scale": 1.0,
                                                       "steps_scale": 1.0, "nproc": 1}
    nproc: int = Field(default=1, ge=1)
    """Processes a study trial trains on, launched through torchrun on its machine (gloo on CPUs, nccl on
    GPUs), each its share of every global batch; rank 0 checkpoints and commits the student, whose
    history the trial logs when training ends. Part of the key (another split of the batch sums floats
    in another order)."""

    accumulate: int = Field(default=1, gt=0)
    """Micro-batches per step: the loss's similarity matrices still span the whole batch."""
    ema: float | None = Field(default=None, gt=0, lt=1)
    """Decay of an exponential moving average of the weights, evaluated and saved instead of the raw
    weights (Tab. 15: 0.9995 for S0). None: no EMA."""
    eval_every: int = Field(default=500, gt=0)
    """Run the eval suite every N steps (logged against seen samples)."""
    checkpoint_every: int = Field(default=500, gt=0)
    log_every: int = Field(default=25, gt=0)
    batch_scale: float = Field(default=1.0, gt=0)
    """Multiplies batch_size and divides the schedule's step counts (steps, warm-up, eval and checkpoint
    intervals) by the same factor: the same samples seen at another batch size, in whatever profile the
    recipe resolves to. Applied when the recipe is validated; the result holds the scaled values and 1.0."""
    steps_scale: float = Field(default=1.0, gt=0)
    """Multiplies the training budget (steps and warm-up; rounded half up) at the profile's batch: a study
    that trains for 0.6 of the profile's steps says so once and keeps saying it under every profile.
    Applied before batch_scale; the result holds the scaled values and 1.0."""

    @model_validator(mode="before")
    @classmethod
    def _apply_scales(cls, data):
        if not isinstance(data, dict):
            return data
        for key, names, step_factor, batch_factor in (
                ("steps_scale", BUDGET_STEPS, lambda s: s, lambda s: 1.0),
                ("batch_scale", SCALED_STEPS, lambda s: 1 / s, lambda s: s)):
            scale = data.get(key, 1.0)
            if scale == 1.0:
                continue
            batch = data.get("batch_size", cls.model_fields["batch_size"].default)
            steps = {name: data.get(name, cls.model_fields[name].default) for name in names}
            if not all(isinstance(v, (int, float)) and v > 0 for v in (scale, batch)) or \
                    not all(isinstance(v, (int, float)) for v in steps.values()):
                return data  # the fields' own validation names the error
            steps = {name: max(0 if name == "warmup_steps" else 1, _half_up(v * step_factor(scale)))
                     for name, v in steps.items()}
            data = data | steps | {"batch_size": _half_up(batch * batch_factor(scale)), key: 1.0}
        return data


def _half_up(value: float) -> int:
    """Round half up (12.5 → 13), not to even as ``round`` does."""
    return math.floor(value + 0.5)


class EvalConfig(Strict):
    suite: str | None = None
    """Path to an eval-suite YAML, or the name of a shipped one (`validation`: the tuning suite on the
    validation slice); None uses the default suite (workbench/evaluate/suite.yaml)."""

    @field_validator("suite")
    @classmethod
    def _suite_exists(cls, suite: str | None) -> str | None:
        try:
            suite_path(suite)
        except FileNotFoundError as error:
            raise ValueError(str(error)) from None
        return suite


class ReinforceConfig(Strict):
    """Dataset reinforcement (MobileCLIP Sec. 3): what is stored with every training image."""

    teachers: list[str] = []
    """Zoo teachers whose embeddings are stored, concatenated along the feature axis in this order.
    Empty: no reinforcement (plain CLIP)."""
    zoo: str | None = None
    """Teacher zoo YAML; None: the built-in zoo (workbench/teachers/zoo.yaml)."""
    augmentations: int = Field(default=8, gt=0)
    """K stored augmentations per image (DataCompDR-12M: 30, DFNDR-2B: 2)."""
    augment: Preset | AugmentPolicy = "strong"
    """A preset (weak, strong, datacompdr) or a full policy (workbench/config/augment.py)."""
    captioners: list[str] = []
    """Captioners (`workbench captioner list`) whose synthetic captions are stored, one key each."""
    registry: str | None = None
    """Captioner registry YAML; None: the built-in one (workbench/captioners/captioners.yaml)."""
    captions: int = Field(default=5, ge=1)
    """S synthetic captions per image and captioner (Tab. 14: 5)."""
    decoding: str = "top_p"
    """Caption sampling, as `workbench captioner generate --decoding` takes it."""
    dtype: Literal["fp16", "bf16"] = "fp16"
    """Stored embedding precision. fp16 is native to numpy's npz (readable anywhere) and keeps 3 more
    mantissa bits than bf16 for unit-norm vectors; bf16 matches the released shards' ``pth.gz``."""
    compress: bool = True
    """gzip shards: tar and npz headers are ~3 KB a sample, as much as the embeddings at micro scale."""
    batch_size: int = Field(default=256, gt=0)
    """Images per batch: each of the K augmentations of a batch is one teacher forward."""
    seed: int = 0
    """Seeds the stored augmentations and captions; independent of the trial seed, so every seed of a
    study trains on the same reinforced data."""
    workers: int = Field(default=1, gt=0)
    """Processes, each writing its own share of the shards (ranks under torchrun split shards first):
    local processes, or Ray tasks with ``backend: ray``."""
    omitted_at_default: ClassVar[dict[str, object]] = {"backend": "local"}
    backend: Literal["local", "ray"] = "local"
    """Where the workers run: local processes, or tasks on a Ray cluster (``RAY_ADDRESS``, or a Ray
    started on this machine), every node seeing the workspace path. The shards are the same either way."""
    on_corrupt: Literal["fail", "skip"] = "fail"
    """A corrupt input shard fails the stage (naming it), or is skipped and counted."""


class DistillConfig(Strict):
    """Training on a reinforced dataset (MobileCLIP2 Eq. 1, 2); used when ``reinforce.teachers`` is set."""

    teachers: list[str] | None = None
    """Stored teachers to distil from (their embedding blocks); None: all of ``reinforce.teachers``. A
    study can vary this over one reinforced dataset that stores several teachers."""
    logit_scales: list[float] | None = None
    """KD logit scale (1/τ_k) per distilled teacher, in order; None: each teacher's own trained scale
    (Tab. 3: rarely the best)."""
    lam: float = Field(default=1.0, ge=0, le=1)
    """λ: weight of the distillation loss; 1 − λ weights the CLIP loss (ablations use 1)."""
    ensemble: Literal["kl", "probabilities"] = "kl"
    """Average the teachers' KL terms (Eq. 1) or their softmax probabilities. The student's gradient is
    the same either way (softmax minus the teachers' mean probabilities); only the logged loss differs."""
    gt_weight: float = Field(default=1.0, ge=0)
    """Weight of the loss on ground-truth captions (Tab. 15: 1)."""
    synthetic_weight: float = Field(default=1.0, ge=0)
    """Weight of the loss on synthetic captions (Tab. 15: 1); 0 trains on ground truth only."""
    synthetic_captions: int | None = Field(default=None, ge=0)
    """Use the first n of the S stored captions per captioner; None: all; 0: none."""
    captioners: list[str] | None = None
    """Stored captioners whose captions are used; None: all of ``reinforce.captioners``."""
    mix_synthetic: float = Field(default=0.0, ge=0, le=1)
    """Probability of replacing the ground-truth caption by a synthetic one (then one loss, not two)."""
    augmentation_order: Literal["random", "sequential"] = "random"
    """Which stored augmentation a sample replays: a random one, or epoch mod K."""
    mode: Literal["reinforced", "online"] = "reinforced"
    """Stored teacher embeddings, or teachers run at train time on the same replayed images (the
    baseline reinforcement saves the cost of)."""


class Recipe(Strict):
    name: str = "clip"
    seed: int = 0
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    reinforce: ReinforceConfig = ReinforceConfig()
    distill: DistillConfig = DistillConfig()

    @model_validator(mode="after")
    def _distill_matches_reinforce(self) -> "Recipe":
        if self.data.reinforced is not None and self.reinforce.teachers:
            raise ValueError("data.reinforced: trains on released shards, so there is nothing to reinforce; "
                             "leave reinforce.teachers empty (or drop data.reinforced to reinforce data.train)")
        if self.data.reinforced is not None and self.distill.mode == "online":
            raise ValueError("distill.mode: online runs zoo teachers at train time; released shards hold "
                             "their teachers' embeddings only (use reinforced)")
        stored, used = self.stored_teachers, self.distilled_teachers
        if stored and (unknown := [t for t in used if t not in stored]):
            raise ValueError(f"distill.teachers: {unknown} are not stored; reinforce.teachers is {stored}")
        if stored and self.distill.logit_scales is not None and len(self.distill.logit_scales) != len(used):
            raise ValueError(f"distill.logit_scales: {len(self.distill.logit_scales)} scales for {len(used)} "
                             f"distilled teachers ({', '.join(used)}); give one per teacher")
        ours = self.data.reinforced is None  # released shards name their own captions (syn.json keys)
        if ours and stored and self.distill.captioners and (unknown := [c for c in self.distill.captioners
                                                               if c not in self.reinforce.captioners]):
            raise ValueError(f"distill.captioners: {unknown} are not stored; reinforce.captioners is "
                             f"{self.reinforce.captioners}")
        if ours and stored and (self.distill.synthetic_captions or 0) > self.reinforce.captions:
            raise ValueError(f"distill.synthetic_captions: {self.distill.synthetic_captions} exceeds the "
                             f"{self.reinforce.captions} stored (reinforce.captions)")
        return self

    @property
    def stored_teachers(self) -> list[str]:
        """The teachers whose embeddings the training data holds: reinforced here, or in released shards."""
        if self.data.reinforced is not None:
            return [t.name for t in self.data.reinforced.teachers]
        return list(self.reinforce.teachers)

    @property
    def distilled_teachers(self) -> list[str]:
        return list(self.distill.teachers) if self.distill.teachers is not None else self.stored_teachers

    @property
    def distils(self) -> bool:
        """Whether the student learns from stored teacher embeddings (ours or released), not plain CLIP."""
        return bool(self.stored_teachers)

    def identity(self) -> dict:
        """What a trained student depends on: everything but the name, and no reinforcement sections
        while reinforcement is off (so plain-CLIP results keep their keys)."""
        tree = self.model_dump(mode="json", exclude={"name"})
        if not self.distils:
            tree.pop("reinforce")
            tree.pop("distill")
        return tree
