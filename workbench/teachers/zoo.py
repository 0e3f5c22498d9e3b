"""The teacher zoo: named teachers that study files and `workbench teacher fit NAME` refer to.

Sources told apart by ``kind``, each a registered kind of ``workbench.teachers.kinds`` (its entry class
and behaviour in a module there):

- ``lit``: frozen pretrained towers (EfficientNet-Lite, MiniLM) with projections and a logit scale
  trained contrastively on the base sets (LiT-style) — real pretrained knowledge, offline.
- ``scratch``: an open_clip CLIP larger than the students, trained longer by the student trainer.
- ``openclip``: any open_clip model with a hub tag or a local checkpoint (the papers' DFN ViT-L-14s).

Besides zoo names, ``openclip:MODEL/TAG_OR_PATH`` names an open_clip teacher inline, e.g.
``openclip:ViT-L-14/dfn2b`` or ``openclip:ViT-B-16//data/ckpt/vitb16.bin``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, field_validator

from workbench.config.errors import ConfigError
from workbench.config.files import Strict, load_spec
from workbench.config.kinds import entries_schema
from workbench.teachers.kinds import BASE_SETS, entry_classes, kind_of
# The built-in kinds, registered in this order (the order a zoo error lists them); their entry classes
# stay importable from here.
from workbench.teachers.kinds.lit import LitFit, LitTeacherSpec
from workbench.teachers.kinds.scratch import ScratchTeacherSpec
from workbench.teachers.kinds.openclip import OpenClipTeacherSpec

__all__ = ["BASE_SETS", "DEFAULT_ZOO", "INLINE_OPENCLIP", "LitFit", "LitTeacherSpec", "OpenClipTeacherSpec",
           "ScratchTeacherSpec", "Zoo", "dump_spec", "load_zoo", "parse_inline", "teacher_spec"]

DEFAULT_ZOO = Path(__file__).with_name("zoo.yaml")
INLINE_OPENCLIP = "openclip:"


class Zoo(Strict):
    teachers: dict[str, Any]
    """Name → entry, each an instance of its kind's entry class (``workbench.teachers.kinds``)."""

    @field_validator("teachers", mode="plain")
    @classmethod
    def _by_kind(cls, value: Any) -> dict[str, Any]:
        return entries_schema(entry_classes()).validate_python(value)

    def for_holdout(self, holdout: bool) -> "Zoo":
        """The zoo a ``data.holdout`` recipe uses: every fitted teacher fitted without the validation slice,
        under its own key (an open_clip teacher is not fitted here and stays as it is). ``holdout`` False
        returns this zoo unchanged."""
        if not holdout:
            return self
        return Zoo(teachers={name: kind_of(spec).for_holdout(spec) for name, spec in self.teachers.items()})


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


def teacher_spec(name: str, zoo: Zoo | None = None):
    if name.startswith(INLINE_OPENCLIP):
        return parse_inline(name)
    zoo = zoo or load_zoo()
    if name not in zoo.teachers:
        raise ConfigError(f"teacher {name!r}", f"not in the zoo; known: {', '.join(zoo.teachers)} "
                                               f"(or openclip:MODEL/TAG_OR_PATH)")
    return zoo.teachers[name]


def dump_spec(spec: BaseModel) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
