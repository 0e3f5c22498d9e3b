"""The captioner registry: named CoCa captioners that `workbench captioner fit/finetune NAME` build.

Entries are told apart by ``kind``, each a registered kind of ``workbench.captioners.kinds`` (its entry
class and behaviour there): ``pretrain`` (a CoCa trained from scratch on base sets) and ``finetune`` (a
parent captioner trained further on a set with better captions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, PrivateAttr, field_validator

from workbench.captioners.kinds import (CaptionerEntry, CaptionerFit, FinetuneSpec, PretrainSpec, entry_classes,
                                        kind_of)
from workbench.config.errors import ConfigError
from workbench.config.files import Strict, load_spec
from workbench.config.kinds import entries_schema

__all__ = ["CaptionerEntry", "CaptionerFit", "DEFAULT_REGISTRY", "FinetuneSpec", "PretrainSpec", "Registry",
           "captioner_spec", "dump_spec", "lineage", "load_registry", "root_model"]

DEFAULT_REGISTRY = Path(__file__).with_name("captioners.yaml")


class Registry(Strict):
    captioners: dict[str, Any]
    """Name → entry, each an instance of its kind's entry class (``workbench.captioners.kinds``)."""
    _path: str = PrivateAttr(default="the captioner registry")
    """Where the registry was read from (for error messages)."""

    @field_validator("captioners", mode="plain")
    @classmethod
    def _by_kind(cls, value: Any) -> dict[str, Any]:
        return entries_schema(entry_classes()).validate_python(value)

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


def captioner_spec(name: str, registry: Registry) -> CaptionerEntry:
    if name not in registry.captioners:
        raise ConfigError(f"captioner {name!r}", f"not in {registry.path}; known: "
                                                 f"{', '.join(registry.captioners)}")
    return registry.captioners[name]


def lineage(name: str, registry: Registry) -> list[str]:
    """``name`` and its ancestors, root (the pretrain captioner) first."""
    chain = [name]
    while True:
        spec = captioner_spec(chain[-1], registry)
        parent = kind_of(spec).parent(spec)
        if parent is None:
            return chain[::-1]
        if parent in chain:
            raise ConfigError(registry.path, f"captioners.{name}.parent: cycle {' -> '.join(chain + [parent])}")
        if parent not in registry.captioners:
            raise ConfigError(registry.path, f"captioners.{chain[-1]}.parent: unknown captioner {parent!r}; "
                                             f"known: {', '.join(registry.captioners)}")
        chain.append(parent)


def root_model(name: str, registry: Registry) -> str:
    """The open_clip model a captioner is (fine-tunes inherit their root's)."""
    spec = captioner_spec(lineage(name, registry)[0], registry)
    model = kind_of(spec).model(spec)
    assert model is not None, f"{spec.kind} captioners are roots and name their model"
    return model


def dump_spec(spec: BaseModel) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
