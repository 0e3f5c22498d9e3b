"""The captioner registry: named CoCa captioners that `workbench captioner fit/finetune NAME` build.

Two kinds, told apart by ``kind``:

- ``pretrain``: a CoCa trained from scratch on base sets (the noisy "web" captions), as the papers'
  captioners are first trained on DFN-2B / LAION;
- ``finetune``: a parent captioner trained further on a set with better captions, at a lower lr
  (MobileCLIP2 Tab. 6 fine-tunes on MSCOCO, DOCCI, GBC, ...; Tab. 16 gives the recipe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union

import yaml
from pydantic import BaseModel, Field, PrivateAttr

from workbench.config.errors import ConfigError
from workbench.config.files import Strict, load_spec
from workbench.config.recipe import AugmentConfig
from workbench.evaluate.spec import DataRef, as_ref

DEFAULT_REGISTRY = Path(__file__).with_name("captioners.yaml")


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


class _CaptionerSpec(Strict):
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


class PretrainSpec(_CaptionerSpec):
    kind: Literal["pretrain"]
    model: str = "micro-coca"
    """An open_clip CoCa config: a micro one (workbench/models/configs/micro-coca*.json) or e.g. coca_ViT-L-14."""
    fit: CaptionerFit = CaptionerFit()


class FinetuneSpec(_CaptionerSpec):
    kind: Literal["finetune"]
    parent: str
    """The captioner it continues from (its weights, vocabulary and model)."""
    fit: CaptionerFit = CaptionerFit(steps=300, batch_size=64, lr=1e-4, warmup_steps=20, eval_every=50,
                                     checkpoint_every=100)


CaptionerSpec = Annotated[Union[PretrainSpec, FinetuneSpec], Field(discriminator="kind")]


class Registry(Strict):
    captioners: dict[str, CaptionerSpec]
    _path: str = PrivateAttr(default="the captioner registry")
    """Where the registry was read from (for error messages)."""

    @property
    def path(self) -> str:
        return self._path

    def for_holdout(self, holdout: bool) -> "Registry":
        """The registry a ``data.holdout`` recipe uses: every captioner (parents too) fitted without the
        validation slice, under its own keys. ``holdout`` False returns this registry unchanged."""
        if not holdout:
            return self
        changed = Registry(captioners={name: spec.model_copy(update={"holdout": True})
                                       for name, spec in self.captioners.items()})
        changed._path = self._path
        return changed


def load_registry(path: str | Path | None = None, holdout: bool = False) -> Registry:
    """The registry file (default: the one shipped with the workbench), validated, parents checked; with
    ``holdout``, its captioners as a ``data.holdout`` recipe fits them."""
    path = Path(path) if path is not None else DEFAULT_REGISTRY
    registry = load_spec(path, Registry, mapping="expected a mapping with a `captioners:` key")
    registry._path = str(path)
    for name in registry.captioners:
        lineage(name, registry)  # unknown parents and cycles are errors now, before any work
    return registry.for_holdout(holdout)


def captioner_spec(name: str, registry: Registry) -> PretrainSpec | FinetuneSpec:
    if name not in registry.captioners:
        raise ConfigError(f"captioner {name!r}", f"not in {registry.path}; known: "
                                                 f"{', '.join(registry.captioners)}")
    return registry.captioners[name]


def lineage(name: str, registry: Registry) -> list[str]:
    """``name`` and its ancestors, root (the pretrain captioner) first."""
    chain = [name]
    while True:
        spec = captioner_spec(chain[-1], registry)
        if isinstance(spec, PretrainSpec):
            return chain[::-1]
        if spec.parent in chain:
            raise ConfigError(registry.path, f"captioners.{name}.parent: cycle {' -> '.join(chain + [spec.parent])}")
        if spec.parent not in registry.captioners:
            raise ConfigError(registry.path, f"captioners.{chain[-1]}.parent: unknown captioner {spec.parent!r}; "
                                             f"known: {', '.join(registry.captioners)}")
        chain.append(spec.parent)


def root_model(name: str, registry: Registry) -> str:
    """The open_clip model a captioner is (fine-tunes inherit their root's)."""
    spec = captioner_spec(lineage(name, registry)[0], registry)
    assert isinstance(spec, PretrainSpec)
    return spec.model


def dump_spec(spec: BaseModel) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
