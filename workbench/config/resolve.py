"""From a study file and a grid point to the validated Recipe a trial trains with.

Precedence, lowest first: schema defaults ← recipe ``base`` ← profile ← study ``set`` ← axis values
← search values ← seed. Each layer is validated on its own, so an error names the layer that caused it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from workbench.config.overrides import ConfigError, apply_overrides, check_key, validate_recipe
from workbench.config.recipe import Recipe


def recipe_path(name: str) -> Path:
    path = Path(str(resources.files("workbench.recipes") / f"{name}.yaml"))
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"recipe {name!r}", f"unknown recipe {name!r}; known: {', '.join(known)}")
    return path


def load_recipe_layers(name: str, profile: str) -> list[tuple[str, dict[str, Any]]]:
    """The recipe's base and profile overrides, each with the place it was read from."""
    from workbench.config.study import load_yaml

    path = recipe_path(name)
    raw = load_yaml(path) or {}
    profiles = raw.get("profiles", {})
    if profile not in profiles:
        raise ConfigError(str(path), f"profiles: no profile {profile!r} (has {', '.join(profiles)})")
    layers = [(f"{path}: base", raw.get("base") or {}), (f"{path}: profiles.{profile}", profiles[profile])]
    for where, overrides in layers:
        for key in overrides:
            try:
                check_key(key)
            except KeyError as error:
                raise ConfigError(where, error.args[0]) from None
    return layers


def resolve_recipe(recipe: str, profile: str, layers: list[tuple[str, dict[str, Any]]]) -> Recipe:
    """Apply the recipe's layers then the given ``(where, overrides)`` layers, validating after each."""
    tree = Recipe(name=recipe).model_dump(mode="python")
    resolved = None
    for where, overrides in load_recipe_layers(recipe, profile) + layers:
        tree = apply_overrides(tree, overrides)
        resolved = validate_recipe(tree, where)
    return resolved or Recipe(name=recipe)
