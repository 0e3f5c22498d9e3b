"""Spec files (studies, recipes, the teacher zoo, the captioner registry, eval suites): one strict base for
their schemas, one safe YAML reader, and one ``load_spec`` that reads, validates and names what is wrong.

A spec file is data. It is read with a safe loader; nothing in it is executed or imported. Every problem is
reported as ``FILE: dotted.key: what is wrong (what is allowed)``.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError, model_serializer
from pydantic.fields import FieldInfo

from workbench.config.errors import ConfigError

DEFAULT_SUITE = Path(__file__).parent.parent / "evaluate" / "suite.yaml"
"""The eval suite a recipe without ``eval.suite`` is scored on; shipped suites lie beside it."""
MAX_FILE_BYTES = 256 * 1024
"""A study, recipe, zoo or registry file is a few KB; a bigger one is not one of them."""
MAX_NODES = 100_000
"""Values a YAML file may expand to, aliases followed: refuses alias bombs before they are walked."""

Spec = TypeVar("Spec", bound=BaseModel)


class Strict(BaseModel):
    """Base of every spec schema: unknown keys are errors, and a validated spec never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    omitted_at_default: ClassVar[dict[str, object]] = {}
    """Fields added after results were cached: left out of dumps while they hold these values, so the
    stage keys hashed from dumps (students, captioners) stay those of the cached results."""

    @model_serializer(mode="wrap")
    def _omit_defaults_added_later(self, handler):
        data = handler(self)
        for key, default in self.omitted_at_default.items():
            if getattr(self, key) == default:
                data.pop(key, None)
        return data


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser where installed
    """safe_load that refuses duplicate mapping keys instead of silently keeping the last one."""


def _no_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        keys.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _too_big(value: Any, limit: int = MAX_NODES) -> bool:
    """Whether walking ``value`` (aliases followed, as every later step would) visits more than ``limit`` nodes."""
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def load_yaml(path: Path) -> Any:
    """Parse a YAML file safely; every problem (missing, not UTF-8, too big, bad YAML) is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "file not found" if not path.exists() else "not a file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(str(path), f"cannot read: {error.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(str(path), f"{len(data):,} bytes; a study, recipe, zoo or registry file is at most "
                                     f"{MAX_FILE_BYTES:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(str(path), f"line {line}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
                                     f"{error.start}); save the file as UTF-8") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f"line {mark.line + 1}" if mark else "YAML"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(str(path), f"{at}: invalid YAML: {problem}") from None
    if _too_big(raw):
        raise ConfigError(str(path), f"(top level): expands to more than {MAX_NODES:,} values (YAML aliases "
                                     f"repeated inside each other?)")
    return raw


def load_spec(path: str | Path, model: type[Spec], *, mapping: str | None = None, where: str | None = None) -> Spec:
    """Read the YAML file ``path`` and validate it as ``model``, or raise ConfigError naming file and key.

    ``mapping``: what the file is, when its top level is not a mapping (``{type}`` becomes the type found);
    None leaves that to the schema. ``where``: the file as messages name it (default: ``path``).
    """
    where = str(path) if where is None else where
    raw = load_yaml(Path(path))
    if mapping is not None and not isinstance(raw, dict):
        raise ConfigError(where, f"(top level): {mapping.format(type=type(raw).__name__)}")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise spec_error(error, model, where) from None


def spec_error(error: ValidationError, model: type[BaseModel], where: str) -> ConfigError:
    """The first problem of a failed validation of ``model``: ``where: dotted.key: what is wrong``, an
    unknown key with the keys allowed in its place."""
    first = error.errors()[0]
    shown, _ = _walk(model, first["loc"])
    detail = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        section, _ = _unwrap(_walk(model, first["loc"][:-1])[1])
        allowed = list(section.model_fields) if _is_model(section) else []
        detail = f"unknown key; allowed here: {', '.join(allowed)}"
    return ConfigError(where, f"{'.'.join(shown) or '(top level)'}: {detail}")


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _walk(model: type[BaseModel], loc: tuple) -> tuple[list[str], Any]:
    """An error location as the file spells it, and the type found at its end (None: not known).

    Pydantic puts the tag of a discriminated union into the location (``search.space.lr.float.log``);
    the file has no such key, so tags are left out. Every other part is kept as it is.
    """
    shown: list[str] = []
    current: Any = model
    for part in loc:
        current, is_tag = _step(current, part)
        if not is_tag:
            shown.append(str(part))
    return shown, current


def _step(annotation: Any, part: Any) -> tuple[Any, bool]:
    """The type under ``part`` of a value of type ``annotation``, and whether ``part`` is a union's tag."""
    annotation, tags = _unwrap(annotation)
    if tags is not None:
        return (tags[part], True) if part in tags else (None, False)
    if _is_model(annotation):
        field = annotation.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None, False
        if field.discriminator is not None:
            return Annotated[field.annotation, field], False
        return field.annotation, False
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and len(args) == 2:
        return args[1], False
    if origin in (list, set, frozenset) and args:
        return args[0], False
    if origin is tuple and args:
        return (args[0] if len(args) == 2 and args[1] is Ellipsis else
                args[part] if isinstance(part, int) and part < len(args) else None), False
    if origin in (Union, types.UnionType):  # a smart union names the member it tried: a model by its name
        return next((arg for arg in args if _is_model(arg) and arg.__name__ == part), None), False
    return None, False


def _unwrap(annotation: Any) -> tuple[Any, dict[Any, Any] | None]:
    """``annotation`` without ``Optional`` and ``Annotated``, and its members by tag if it is a
    discriminated union (else None)."""
    discriminator = None
    while True:
        if get_origin(annotation) is Annotated:
            annotation, *metadata = get_args(annotation)
            for item in metadata:
                if isinstance(item, Discriminator) or (isinstance(item, FieldInfo) and item.discriminator):
                    discriminator = item if isinstance(item, Discriminator) else item.discriminator
            continue
        if get_origin(annotation) in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
            if discriminator is not None:
                return annotation, _tags(members, discriminator)
        return annotation, None


def _tags(members: list[Any], discriminator: Any) -> dict[Any, Any]:
    """A discriminated union's members by tag: their ``Tag`` annotations, else the values of the
    discriminating field's ``Literal``."""
    field = discriminator.discriminator if isinstance(discriminator, Discriminator) else discriminator
    tags: dict[Any, Any] = {}
    for member in members:
        base, *metadata = get_args(member) if get_origin(member) is Annotated else (member,)
        tag = next((item.tag for item in metadata if isinstance(item, Tag)), None)
        if tag is not None:
            tags[tag] = base
        elif isinstance(field, str) and _is_model(base) and field in base.model_fields:
            for value in get_args(base.model_fields[field].annotation):
                tags[value] = base
    return tags


def suite_path(path: str | Path | None = None) -> Path:
    """The suite file a recipe names: a path, a shipped suite's bare name, or None for the default."""
    path = Path(path) if path is not None else DEFAULT_SUITE
    if path.parent == Path(".") and not path.suffix and (shipped := DEFAULT_SUITE.with_name(f"{path}.yaml")).exists():
        path = shipped
    if not path.exists():
        shipped = sorted(p.stem for p in DEFAULT_SUITE.parent.glob("*.yaml"))
        raise FileNotFoundError(f"no eval suite {str(path)!r}: give a suite YAML file or a shipped suite's "
                                f"name ({', '.join(shipped)})")
    return path
