"""Captioner kinds: what a registry entry's ``kind:`` names, and everything that differs between kinds.

Each kind is a ``CaptionerKind`` subclass holding its registry entry class (the pydantic spec) and its
behaviour: its cache key, its parent (fine-tunes continue one), the command that builds it, how it is
described, and its fit and load (by default: the CoCa trainer, from a fresh model or its parent's
weights, and the stored model). ``register_kind`` adds a kind under its name; ``captioners/spec.py``
validates registry entries against the registered kinds' entry classes.

Three kinds ship here:

- ``pretrain``: a CoCa trained from scratch on base sets (the noisy "web" captions), as the papers'
  captioners are first trained on DFN-2B / LAION;
- ``openclip``: a released CoCa, loaded from a hub tag or a local checkpoint with open_clip's whole
  tokenizer (the papers' CoCa-ViT-L/14 captioners), not trained here;
- ``finetune``: a parent captioner (of either kind) trained further on a set with better captions, at a
  lower lr (MobileCLIP2 Tab. 6 fine-tunes on MSCOCO, DOCCI, GBC, ...; Tab. 16 gives the recipe).

No torch at module level: the registry file is read by ``study validate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from workbench.config.files import Strict
from workbench.config.kinds import KindError, check_new_kind
from workbench.config.recipe import AugmentConfig
from workbench.evaluate.spec import DataRef, as_ref
from workbench.stages.registry import register_stage

if TYPE_CHECKING:
    from workbench.captioners.spec import Registry
    from workbench.workspace import Workspace

CAPTIONER = register_stage("captioner", version=1)


class CaptionerFit(Strict):
    """How a captioner is trained. Field names follow the student's TrainConfig, whose schedule and
    optimizer grouping the captioner shares."""

    steps: int = Field(default=3000, gt=0)
    batch_size: int = Field(default=128, gt=1)
    lr: float = Field(default=1e-3, gt=0)            # Tab. 16 (pretrain)
    min_lr: float = Field(default=1e-6, ge=0)
    weight_decay: float = Field(default=0.1, ge=0)   # Tab. 16
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.95, ge=0, lt=1)
    warmup_steps: int = Field(default=100, ge=0)
    grad_clip: float | None = Field(default=1.0, gt=0)
    caption_loss_weight: float = Field(default=2.0, ge=0)   # Tab. 16
    clip_loss_weight: float = Field(default=1.0, ge=0)      # Tab. 16
    augment: AugmentConfig = AugmentConfig()
    min_count: int = Field(default=1, ge=1)
    """BPE tokens seen fewer times in the training captions join the vocabulary as "unknown": a token
    seen once (a file name's serial number, an author) cannot be learned, yet costs a logit everywhere."""
    max_train_samples: int | None = Field(default=None, gt=0)
    """Cap on training pairs (a seeded subset): for quick checks."""
    log_every: int = Field(default=25, gt=0)
    eval_every: int = Field(default=500, gt=0)
    """Held-out caption and contrastive losses every N steps (on the eval splits of ``data``)."""
    eval_samples: int = Field(default=512, gt=0)
    """Held-out pairs the periodic losses are computed on (the first N of the eval splits)."""
    checkpoint_every: int = Field(default=500, gt=0)


class CaptionerEntry(Strict):
    """The base of every registry entry class: each adds ``kind: Literal["its name"]`` and ``fit``."""

    data: list[str | DataRef] = Field(min_length=1)
    """Train splits it is fitted on (the same part of the eval splits gives the held-out losses): dataset
    names, or ``{dataset: NAME, where: {FIELD: [LABELS]}}`` / ``exclude:`` for part of a dataset."""
    seed: int = 0
    holdout: bool = False
    """Fit without the validation slice of ``data``: what a ``data.holdout`` recipe's captioners are
    (``Registry.for_holdout``). Left out of the dump while False, so other fits keep their keys."""

    omitted_at_default: ClassVar[dict[str, object]] = {"holdout": False}

    @property
    def refs(self) -> list[DataRef]:
        return [as_ref(item) for item in self.data]

    @property
    def datasets(self) -> list[str]:
        """The datasets it reads, each once, in order."""
        return list(dict.fromkeys(ref.dataset for ref in self.refs))


class PretrainSpec(CaptionerEntry):
    kind: Literal["pretrain"]
    model: str = "micro-coca"
    """An open_clip CoCa config: a micro one (workbench/models/configs/micro-coca*.json) or e.g. coca_ViT-L-14."""
    fit: CaptionerFit = CaptionerFit()
    context_length: int | None = Field(default=None, ge=4)
    """Caption tokens the model reads and writes (start and end included; None: its config's). MobileCLIP2
    Tab. 6 compares 77 with 255: longer captions, at a longer decoder pass. Its fine-tunes keep it."""

    omitted_at_default: ClassVar[dict[str, object]] = {"holdout": False, "context_length": None}


class OpenClipCaptionerSpec(CaptionerEntry):
    kind: Literal["openclip"]
    model: str
    """An open_clip CoCa config (e.g. coca_ViT-L-14) whose weights ``pretrained`` holds."""
    pretrained: str
    """A pretrained tag (needs the model hub) or a local checkpoint file."""
    data: list[str | DataRef] = []
    """Sets its held-out caption loss and sample captions are shown on (it is not trained here, so no task
    becomes seen through it); empty: none."""
    context_length: int | None = Field(default=None, ge=4)
    """Caption tokens it writes (start and end included; None: its config's, at most that)."""
    fit: CaptionerFit = CaptionerFit(steps=1, eval_samples=64)
    """Not trained; ``eval_samples`` held-out pairs of ``data`` give its losses."""


class FinetuneSpec(CaptionerEntry):
    kind: Literal["finetune"]
    parent: str
    """The captioner it continues from (its weights, vocabulary and model)."""
    fit: CaptionerFit = CaptionerFit(steps=300, batch_size=64, lr=1e-4, warmup_steps=20, eval_every=50,
                                     checkpoint_every=100)


class CaptionerKind:
    """One kind of captioner. Subclasses set ``name`` (the registry's ``kind:``), ``spec`` (the entry class)
    and ``command`` and implement ``identity`` and ``describe``; a kind with a parent overrides ``parent``,
    a root kind ``model``."""

    name: ClassVar[str]
    spec: ClassVar[type[CaptionerEntry]]
    command: ClassVar[str]
    """The ``workbench captioner`` command that builds it."""

    def parent(self, spec: Any) -> str | None:
        """The captioner it continues from (fitted first, its key part of this one's), or None for a root."""
        return None

    def model(self, spec: Any) -> str | None:
        """The open_clip model a root captioner is; None: its parent's (``spec.root_model``)."""
        return None

    def identity(self, name: str, spec: Any, registry: Registry, ws: Workspace) -> tuple[Any, dict[str, str]]:
        """(config, inputs) the captioner's cache key hashes."""
        raise NotImplementedError

    def key(self, name: str, spec: Any, registry: Registry, ws: Workspace) -> str:
        """The captioner's stage-cache key."""
        return CAPTIONER.key(*self.identity(name, spec, registry, ws))

    def fit(self, name: str, key: str, spec: Any, model_name: str, ws: Workspace, out: Path, partial: Path,
            parent: Path | None, log, progress: bool):
        """Fit into ``out`` (from the parent's artifact ``parent``, if any); returns (Captioner, summary)."""
        from workbench.captioners.train import train_captioner  # torch and open_clip

        return train_captioner(name, key, spec, model_name, ws, out, partial, parent, log, progress)

    def load(self, artifact: Path, name: str, key: str):
        """The fitted captioner from its artifact folder."""
        from workbench.captioners.model import load_captioner_from  # torch and open_clip

        return load_captioner_from(artifact, name, key)

    def trained_on(self, spec: Any) -> list[DataRef]:
        """The data its own fit trained on (a student's lineage: those tasks are not transfer)."""
        return spec.refs

    def external(self, spec: Any) -> str | None:
        """Pretrained weights it starts from whose data lies outside the workspace, described; None: none."""
        return None

    def describe(self, spec: Any) -> str:
        """Where it comes from (``workbench captioner list``)."""
        raise NotImplementedError

    def stage_label(self, spec: Any) -> str:
        """What its fit is, in ``study plan``'s list of stages."""
        return self.name


_KINDS: dict[str, CaptionerKind] = {}


def register_kind(cls: type[CaptionerKind]) -> type[CaptionerKind]:
    """Class decorator: register ``cls`` under ``cls.name``, the ``kind:`` its registry entries carry."""
    check_new_kind("captioner", _KINDS, cls)
    _KINDS[cls.name] = cls()
    return cls


def kinds() -> dict[str, CaptionerKind]:
    """Every registered kind, by name."""
    return dict(_KINDS)


def kind_of(spec: BaseModel) -> CaptionerKind:
    """The kind of a registry entry."""
    if spec.kind not in _KINDS:
        raise KindError(f"unknown captioner kind {spec.kind!r}; known: {', '.join(_KINDS)}")
    return _KINDS[spec.kind]


def entry_classes() -> tuple[type[CaptionerEntry], ...]:
    """The entry classes of every registered kind (what a registry entry validates as)."""
    return tuple(kind.spec for kind in _KINDS.values())


@register_kind
class PretrainKind(CaptionerKind):
    name = "pretrain"
    spec = PretrainSpec
    command = "fit"

    def model(self, spec: PretrainSpec) -> str:
        return spec.model

    def identity(self, name, spec: PretrainSpec, registry, ws):
        from workbench.captioners.model import model_config  # open_clip
        from workbench.data.build import dataset_fingerprints  # the sources load torch; specs must not

        inputs = dataset_fingerprints(ws, spec.datasets)
        return {"spec": spec.model_dump(mode="json"), "model_config": model_config(spec.model)}, inputs

    def describe(self, spec: PretrainSpec) -> str:
        return f"pretrain {spec.model}"


@register_kind
class OpenClipKind(CaptionerKind):
    name = "openclip"
    spec = OpenClipCaptionerSpec
    command = "fit"

    def model(self, spec: OpenClipCaptionerSpec) -> str:
        return spec.model

    def identity(self, name, spec: OpenClipCaptionerSpec, registry, ws):
        from workbench.captioners.model import model_config  # open_clip
        from workbench.data.build import dataset_fingerprints  # the sources load torch; specs must not
        from workbench.models.checkpoints import checkpoint_identity

        config = spec.model_dump(mode="json", exclude={"pretrained"}) | checkpoint_identity(spec.pretrained)
        return {"spec": config, "model_config": model_config(spec.model)}, dataset_fingerprints(ws, spec.datasets)

    def fit(self, name, key, spec, model_name, ws, out, partial, parent, log, progress):
        from workbench.captioners.pretrained import load_released  # torch and open_clip

        return load_released(name, key, spec, ws, out)

    def trained_on(self, spec: OpenClipCaptionerSpec) -> list[DataRef]:
        return []  # ``data`` only shows it: its held-out losses and sample captions

    def external(self, spec: OpenClipCaptionerSpec) -> str:
        return f"released {spec.model} weights ({spec.pretrained})"

    def describe(self, spec: OpenClipCaptionerSpec) -> str:
        return f"released {spec.model} ({spec.pretrained})"

    def stage_label(self, spec: OpenClipCaptionerSpec) -> str:
        return "load released weights"


@register_kind
class FinetuneKind(CaptionerKind):
    name = "finetune"
    spec = FinetuneSpec
    command = "finetune"

    def parent(self, spec: FinetuneSpec) -> str:
        return spec.parent

    def identity(self, name, spec: FinetuneSpec, registry, ws):
        """The parent's key is an input: refitting a parent makes new children."""
        from workbench.data.build import dataset_fingerprints  # the sources load torch; specs must not

        inputs = dataset_fingerprints(ws, spec.datasets)
        parent = registry.captioners[spec.parent]  # load_registry checked that it exists
        inputs["parent"] = kind_of(parent).key(spec.parent, parent, registry, ws)
        return spec.model_dump(mode="json", exclude={"parent"}), inputs

    def describe(self, spec: FinetuneSpec) -> str:
        return f"finetune of {spec.parent}"

    def stage_label(self, spec: FinetuneSpec) -> str:
        return f"fine-tune of {spec.parent}"
