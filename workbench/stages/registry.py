"""Every stage's name, registered once: the name is its cache folder, its MLflow tag and its plan row.

A stage module declares ``TEACHER = register_stage("teacher", version=1)`` and keys its artifacts
with ``TEACHER.key(config, inputs)``. Raising a stage's version invalidates every artifact it built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.stages.cache import stage_key


@dataclass(frozen=True)
class Stage:
    name: str
    version: int

    def key(self, config: Any, inputs: dict[str, str] | None = None) -> str:
        return stage_key(self.name, self.version, config, inputs)

    @property
    def tag(self) -> str:
        """The MLflow tag (under the project's prefix) that names an artifact of this stage."""
        return f"stage.{self.name}"


_STAGES: dict[str, Stage] = {}


def register_stage(name: str, version: int) -> Stage:
    """Declare a stage; a name registered twice is an error (two stages would share a cache folder)."""
    if name in _STAGES:
        raise ValueError(f"stage {name!r} is registered twice (as version {_STAGES[name].version} and {version})")
    _STAGES[name] = Stage(name, version)
    return _STAGES[name]


def registered() -> dict[str, Stage]:
    """The stages declared by the modules imported so far."""
    return dict(_STAGES)
