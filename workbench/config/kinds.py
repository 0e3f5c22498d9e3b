"""What the teacher zoo and the captioner registry share: entries of registered kinds, told apart by ``kind``.

Each family keeps its own registry (``workbench.teachers.kinds``, ``workbench.captioners.kinds``); this is
the check a new kind passes and the schema a file's entries validate against.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, TypeAdapter


class KindError(ValueError):
    """A kind registered twice, one whose entry class does not name it, or an entry of no registered kind."""


def check_new_kind(family: str, registered: dict[str, Any], cls: type) -> None:
    """``cls`` may join ``registered``: its ``name`` is new and its entry class (``cls.spec``) carries
    ``kind: Literal[name]``, the tag a file's entries are told apart by."""
    name = cls.name
    if name in registered:
        raise KindError(f"{family} kind {name!r} is registered twice: {type(registered[name]).__qualname__} "
                        f"and {cls.__qualname__}")
    kind_field = cls.spec.model_fields.get("kind")
    if kind_field is None or getattr(kind_field.annotation, "__args__", None) != (name,):
        raise KindError(f"{family} kind {name!r}: {cls.spec.__name__} needs the field kind: Literal[{name!r}]")


_adapters: dict[tuple[type[BaseModel], ...], TypeAdapter] = {}


def entries_schema(classes: tuple[type[BaseModel], ...]) -> TypeAdapter:
    """Validates ``{name: entry}`` as one of ``classes`` each, told apart by ``kind``."""
    if classes not in _adapters:
        union = Annotated[Union[classes], Field(discriminator="kind")] if len(classes) > 1 else classes[0]
        _adapters[classes] = TypeAdapter(dict[str, union])
    return _adapters[classes]
