"""From a study file and a grid point to the validated Recipe a trial trains with.

Precedence, lowest first: schema defaults ← recipe ``base`` ← profile ← study ``set`` ← axis values
← search values ← seed. An invalid result is validated again layer by layer, so the error names the layer
that made it invalid.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, field_validator, model_validator

from workbench.config.errors import ConfigError
from workbench.config.files import Strict, load_spec
from workbench.config.overrides import apply_layers, apply_overrides, check_key, validate_recipe
from workbench.config.recipe import Recipe


class RecipeFile(Strict):
    """A recipe file (``workbench/recipes/NAME.yaml``): dotted overrides of the schema's defaults in
    ``base``, and per profile dotted overrides of those. An empty file or section overrides nothing."""

    base: dict[str, Any] = {}
    profiles: dict[str, dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, raw: Any) -> Any:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise ValueError(f"a recipe is a mapping with `base` and `profiles`, got {type(raw).__name__}")
        return raw

    @field_validator("base", mode="before")
    @classmethod
    def _no_base(cls, base: Any) -> Any:
        return base or {}

    @field_validator("profiles", mode="before")
    @classmethod
    def _no_overrides(cls, profiles: Any) -> Any:
        if isinstance(profiles, dict):
            return {name: overrides or {} for name, overrides in profiles.items()}
        return profiles or {}


def _recipes_dir() -> Path:
    return Path(str(resources.files("workbench.recipes")))


def recipe_path(name: str) -> Path:
    path = _recipes_dir() / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"recipe {name!r}", f"unknown recipe {name!r}; known: {', '.join(known)}")
    return path


@functools.lru_cache(maxsize=64)
def _read_recipe(path: Path, mtime_ns: int) -> RecipeFile:
    """A recipe file's contents, parsed once per version of the file (a grid resolves it per trial)."""
    return load_spec(path, RecipeFile)


def read_recipe(name: str) -> tuple[Path, RecipeFile]:
    """The recipe's path and parsed contents (shared: callers must not modify them)."""
    path = recipe_path(name)
    return path, _read_recipe(path, path.stat().st_mtime_ns)


def recipe_profiles() -> list[str]:
    """Every profile the recipe files define (micro, paper, smoke, ...), in file order, each once: the
    values ``--profile`` and a study's ``profile`` accept."""
    profiles: dict[str, None] = {}
    for name in sorted(p.stem for p in _recipes_dir().glob("*.yaml")):
        profiles.update(dict.fromkeys(read_recipe(name)[1].profiles))
    return list(profiles)


def _known_profile(value: Any) -> Any:
    profiles = recipe_profiles()
    if value not in profiles:
        expected = f"{', '.join(map(repr, profiles[:-1]))} or {profiles[-1]!r}" if len(profiles) > 1 else \
            ", ".join(map(repr, profiles))
        raise ValueError(f"Input should be {expected}")
    return value


Profile = Annotated[str, BeforeValidator(_known_profile)]
"""A profile name, as schemas take it: one of ``recipe_profiles()``."""


def load_recipe_layers(name: str, profile: str) -> list[tuple[str, dict[str, Any]]]:
    """The recipe's base and profile overrides, each with the place it was read from."""
    path, recipe = read_recipe(name)
    profiles = recipe.profiles
    if profile not in profiles:
        raise ConfigError(str(path), f"profiles: no profile {profile!r} (has {', '.join(profiles)})")
    layers = [(f"{path}: base", recipe.base), (f"{path}: profiles.{profile}", profiles[profile])]
    for where, overrides in layers:
        for key in overrides:
            try:
                check_key(key)
            except KeyError as error:
                raise ConfigError(where, error.args[0]) from None
    return layers


def recipe_values(name: str, dotted: str) -> list[Any]:
    """What the recipe's profiles give ``dotted`` (a profile's value, else the base's, else the schema's)."""
    _, recipe = read_recipe(name)
    base = recipe.base
    default = Recipe()
    for part in dotted.split("."):
        default = getattr(default, part)
    values = []
    for overrides in recipe.profiles.values():
        value = overrides.get(dotted, base.get(dotted, default))
        if value not in values:
            values.append(value)
    return values or [base.get(dotted, default)]


@functools.lru_cache(maxsize=64)
def _defaults(name: str) -> dict[str, Any]:
    """The schema's defaults as a tree (shared: ``apply_layers`` copies what it changes)."""
    return Recipe(name=name).model_dump(mode="python")


def resolve_recipe(recipe: str, profile: str, layers: list[tuple[str, dict[str, Any]]]) -> Recipe:
    """Apply the recipe's layers then the given ``(where, overrides)`` layers, and validate the result.

    Validated once when it is valid; when it is not, again after each layer, so the error names the
    layer that made it invalid (every layer applied so far must then resolve to a valid recipe).
    """
    base = _defaults(recipe)
    layers = load_recipe_layers(recipe, profile) + layers
    try:
        return Recipe.model_validate(apply_layers(base, [overrides for _, overrides in layers]))
    except ValueError:
        pass
    tree, resolved = base, None
    for where, overrides in layers:
        tree = apply_overrides(tree, overrides)
        resolved = validate_recipe(tree, where)
    return resolved or Recipe(name=recipe)
