"""The teacher zoo: named teachers that study files and `workbench teacher fit NAME` refer to.

Three sources, told apart by ``kind``:

- ``lit``: frozen pretrained towers (EfficientNet-Lite, MiniLM) with projections and a logit scale
  trained contrastively on the base sets (LiT-style) — real pretrained knowledge, offline.
- ``scratch``: an open_clip CLIP larger than the students, trained longer by the student trainer.
- ``openclip``: any open_clip model with a hub tag or a local checkpoint (the papers' DFN ViT-L-14s).

Besides zoo names, ``openclip:MODEL/TAG_OR_PATH`` names an open_clip teacher inline, e.g.
``openclip:ViT-L-14/dfn2b`` or ``openclip:ViT-B-16//data/ckpt/vitb16.bin``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import BaseModel, Field

from workbench.config.errors import ConfigError
from workbench.config.files import Strict, load_spec
from workbench.config.resolve import Profile

DEFAULT_ZOO = Path(__file__).with_name("zoo.yaml")
INLINE_OPENCLIP = "openclip:"
BASE_SETS = ["clipart-web", "glyphs"]
"""The base sets teachers fit on: never tuxpaint or emoji, so their tasks stay transfer for distilled students."""


class _Fitted(Strict):
    holdout: bool = False
    """Fit without the validation slice of the training data: what a ``data.holdout`` recipe's teachers
    are (``Zoo.for_holdout``). Left out of the dump while False, so other fits keep their keys."""

    omitted_at_default: ClassVar[dict[str, object]] = {"holdout": False}


class LitFit(Strict):
    """How the projections are fitted on cached tower features."""

    steps: int = Field(default=2000, gt=0)
    batch_size: int = Field(default=1024, gt=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.05, ge=0)
    warmup_steps: int = Field(default=100, ge=0)
    views: int = Field(default=2, ge=1)
    """Stored views per training image: the whole image, then random crops (features computed once)."""
    crop_scale: tuple[float, float] = (0.4, 1.0)
    max_train_samples: int | None = Field(default=None, gt=0)
    """Cap on training images (a seeded subset): for quick checks."""


class _TeacherBase(Strict):
    suite: str | None = None
    """Eval-suite YAML the fitted teacher is scored on; None: the default suite (as the students)."""


class LitTeacherSpec(_TeacherBase, _Fitted):
    kind: Literal["lit"]
    image_tower: Literal["efficientnet-lite0", "efficientnet-lite1"]
    text_tower: Literal["all-minilm-l6-v2"] = "all-minilm-l6-v2"
    image_size: int = Field(default=96, ge=32)
    """Tower input resolution. EfficientNet-Lite0 embeds ~60 images/s per core at 128 px (measured), ~100
    at 96 px: the base sets' 51k images × 2 views take ~9 min on 2 cores at 96 px. The sources are small
    (glyphs are 64 px renders), so little is lost below the towers' native 224/240 px."""
    embed_dim: int = Field(default=256, gt=0)
    hidden: int = Field(default=1024, ge=0)
    """Width of the MLP projections' hidden layer; 0 makes them linear."""
    data: list[str] = Field(default_factory=lambda: list(BASE_SETS), min_length=1)
    """Train splits the projections are fitted on (never an eval split)."""
    fit: LitFit = LitFit()
    seed: int = 0


class ScratchTeacherSpec(_Fitted):
    """Its eval suite is the recipe's ``eval.suite``; with ``holdout``, its recipe gets ``data.holdout: true``."""

    kind: Literal["scratch"]
    recipe: str = "clip"
    profile: Profile = "micro"
    set: dict[str, Any] = Field(default_factory=dict)
    """Dotted recipe overrides, as in a study file's ``set``."""


class OpenClipTeacherSpec(_TeacherBase):
    kind: Literal["openclip"]
    model: str
    """An open_clip model name (`workbench models` lists them)."""
    pretrained: str
    """A pretrained tag (needs the hub) or a local checkpoint path."""


TeacherSpec = Annotated[Union[LitTeacherSpec, ScratchTeacherSpec, OpenClipTeacherSpec], Field(discriminator="kind")]


class Zoo(Strict):
    teachers: dict[str, TeacherSpec]

    def for_holdout(self, holdout: bool) -> "Zoo":
        """The zoo a ``data.holdout`` recipe uses: every fitted teacher fitted without the validation slice,
        under its own key (an open_clip teacher is not fitted here and stays as it is). ``holdout`` False
        returns this zoo unchanged."""
        if not holdout:
            return self
        return Zoo(teachers={name: spec if isinstance(spec, OpenClipTeacherSpec)
                             else spec.model_copy(update={"holdout": True}) for name, spec in self.teachers.items()})


def load_zoo(path: str | Path | None = None, holdout: bool = False) -> Zoo:
    """The zoo file (default: the one shipped with the workbench), validated; with ``holdout``, its
    teachers as a ``data.holdout`` recipe fits them."""
    path = Path(path) if path is not None else DEFAULT_ZOO
    return load_spec(path, Zoo).for_holdout(holdout)


def parse_inline(name: str) -> OpenClipTeacherSpec:
    """``openclip:MODEL/TAG_OR_PATH`` → its spec."""
    model, sep, pretrained = name.removeprefix(INLINE_OPENCLIP).partition("/")
    if not sep or not model or not pretrained:
        raise ConfigError(name, "expected openclip:MODEL/TAG_OR_PATH, e.g. openclip:ViT-L-14/dfn2b "
                                "or openclip:ViT-B-16//path/to/checkpoint.bin")
    return OpenClipTeacherSpec(kind="openclip", model=model, pretrained=pretrained)


def teacher_spec(name: str, zoo: Zoo | None = None) -> LitTeacherSpec | ScratchTeacherSpec | OpenClipTeacherSpec:
    if name.startswith(INLINE_OPENCLIP):
        return parse_inline(name)
    zoo = zoo or load_zoo()
    if name not in zoo.teachers:
        raise ConfigError(f"teacher {name!r}", f"not in the zoo; known: {', '.join(zoo.teachers)} "
                                               f"(or openclip:MODEL/TAG_OR_PATH)")
    return zoo.teachers[name]


def dump_spec(spec: BaseModel) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
