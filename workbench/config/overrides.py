"""Dotted-key overrides (``train.lr: 3e-4``) checked against the recipe schema before they are applied."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from workbench.config.errors import ConfigError  # also imported from here by many callers
from workbench.config.recipe import Recipe


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def check_key(dotted: str, schema: type[BaseModel] = Recipe) -> None:
    """Raise KeyError with the allowed names if ``dotted`` is not a leaf or section of the schema."""
    model: type[BaseModel] | None = schema
    walked: list[str] = []
    for part in dotted.split("."):
        if model is None or part not in model.model_fields:
            allowed = ", ".join(model.model_fields) if model is not None else "(none: a value, not a section)"
            where = ".".join(walked) or "the recipe"
            raise KeyError(f"unknown key {dotted!r}; {where} allows: {allowed}")
        annotation = model.model_fields[part].annotation
        model = annotation if _is_model(annotation) else None
        walked.append(part)


def apply_overrides(tree: dict, overrides: dict[str, Any]) -> dict:
    """Return a copy of the nested ``tree`` with each dotted key set (keys must already be checked)."""
    return apply_layers(tree, [overrides])


def apply_layers(tree: dict, layers: list[dict[str, Any]]) -> dict:
    """Return ``tree`` with each layer's dotted keys set, layer after layer, leaving ``tree`` as it was.

    Copy on write: only the dicts along a set key's path are copied, so resolving a grid of trials does
    not copy the whole recipe per trial; the result shares untouched sections with ``tree``.
    """
    tree, owned = dict(tree), set()
    owned.add(id(tree))
    for overrides in layers:
        for dotted, value in overrides.items():
            node = tree
            *parents, leaf = dotted.split(".")
            for part in parents:
                child = node.get(part)
                if not isinstance(child, dict) or id(child) not in owned:
                    child = dict(child) if isinstance(child, dict) else {}
                    owned.add(id(child))
                    node[part] = child
                node = child
            node[leaf] = copy.deepcopy(value)
    return tree


def validate_recipe(tree: dict, where: str) -> Recipe:
    """Validate a nested recipe dict; the error names ``where`` and the dotted key that failed."""
    from pydantic import ValidationError

    try:
        return Recipe.model_validate(tree)
    except ValidationError as error:
        first = error.errors()[0]
        if not first["loc"]:  # a check across sections: the message names its keys
            raise ConfigError(where, first["msg"].removeprefix("Value error, ")) from None
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(where, f"{key}: {first['msg']} (got {first.get('input')!r})") from None
