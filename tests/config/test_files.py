"""Spec files: the strict base, the safe YAML reader and ``load_spec``'s one message format."""

from typing import Annotated, ClassVar, Literal, Union

import pytest
from pydantic import Discriminator, Field, Tag, ValidationError

from workbench.config.errors import ConfigError
from workbench.config.files import MAX_FILE_BYTES, MAX_NODES, Strict, load_spec, load_yaml


class Inner(Strict):
    size: int = Field(default=1, gt=0)


class Cat(Strict):
    kind: Literal["cat"]
    lives: int = 9


class Dog(Strict):
    kind: Literal["dog"]
    good: bool = True


class Outer(Strict):
    name: str
    inner: Inner = Inner()
    maybe: Inner | None = None
    pets: dict[str, Annotated[Union[Cat, Dog], Field(discriminator="kind")]] = {}
    tagged: list[Annotated[Union[Annotated[Cat, Tag("c")], Annotated[Dog, Tag("d")]],
                           Discriminator(lambda v: "c" if "lives" in v else "d")]] = []
    added: int = 0

    omitted_at_default: ClassVar[dict[str, object]] = {"added": 0}


def write(tmp_path, text: str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


def error_of(tmp_path, text: str, **kwargs) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_spec(path, Outer, **kwargs)
    assert str(error.value).startswith(f"{path}: ")
    return str(error.value).removeprefix(f"{path}: ")


def test_strict_forbids_unknown_keys_and_changes():
    with pytest.raises(ValidationError):
        Inner(size=2, colour="red")
    with pytest.raises(ValidationError):
        Inner().size = 3


def test_fields_added_later_are_left_out_of_dumps_at_their_default():
    assert "added" not in Outer(name="a").model_dump()
    assert Outer(name="a", added=2).model_dump(mode="json")["added"] == 2
    assert Inner().model_dump() == {"size": 1}


def test_a_valid_file_loads_as_the_model(tmp_path):
    spec = load_spec(write(tmp_path, "name: a\npets: {tom: {kind: cat}}\n"), Outer)
    assert spec == Outer(name="a", pets={"tom": Cat(kind="cat")})


@pytest.mark.parametrize("text, message", [
    ("name: a\ncolour: red\n", "colour: unknown key; allowed here: name, inner, maybe, pets, tagged, added"),
    ("name: a\ninner: {size: 1, x: 2}\n", "inner.x: unknown key; allowed here: size"),
    ("name: a\nmaybe: {x: 2}\n", "maybe.x: unknown key; allowed here: size"),
    ("name: a\ninner: {size: 0}\n", "inner.size: Input should be greater than 0"),
    ("inner: {size: 1}\n", "name: Field required"),
    # a discriminated union's tag is no key of the file: left out, and the member's keys are offered
    ("name: a\npets: {tom: {kind: cat, wings: 2}}\n", "pets.tom.wings: unknown key; allowed here: kind, lives"),
    ("name: a\npets: {cat: {kind: dog, good: maybe}}\n", "pets.cat.good: Input should be a valid boolean, "
                                                         "unable to interpret input"),
    ("name: a\ntagged: [{kind: cat, lives: 3, x: 1}]\n", "tagged.0.x: unknown key; allowed here: kind, lives"),
    ("name: a\npets: {tom: {kind: bird}}\n", "pets.tom: Input tag 'bird' found using 'kind' does not match any of "
                                             "the expected tags: 'cat', 'dog'"),
    ("- 1\n", "(top level): Input should be a valid dictionary or instance of Outer"),
])
def test_problems_name_the_dotted_key_and_what_is_allowed(tmp_path, text, message):
    assert error_of(tmp_path, text) == message


def test_a_file_that_is_no_mapping_is_named_for_what_it_should_be(tmp_path):
    assert error_of(tmp_path, "- 1\n", mapping="an outer file is a mapping, got {type}") == \
        "(top level): an outer file is a mapping, got list"
    assert error_of(tmp_path, "", mapping="an outer file is a mapping, got {type}") == \
        "(top level): an outer file is a mapping, got NoneType"


def test_where_names_the_file_as_the_caller_does(tmp_path):
    with pytest.raises(ConfigError, match=r"^the outer file: colour: unknown key"):
        load_spec(write(tmp_path, "name: a\ncolour: red\n"), Outer, where="the outer file")


@pytest.mark.parametrize("content, message", [
    ("a: 1\na: 2\n", "line 2: invalid YAML: duplicate key 'a'"),
    ("a: [1\n", "invalid YAML"),
    (b"a: \xff\n", "line 1: not UTF-8 text (byte 0xff at offset 3); save the file as UTF-8"),
    ("a: " + "x" * MAX_FILE_BYTES, f"is at most {MAX_FILE_BYTES:,}"),
    ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n", f"expands to more than {MAX_NODES:,} values"),
])
def test_load_yaml_refuses_what_is_not_a_small_plain_yaml_file(tmp_path, content, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_yaml(write(tmp_path, content))


def test_load_yaml_names_a_missing_file_or_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml(tmp_path / "nowhere.yaml")
    with pytest.raises(ConfigError, match="not a file"):
        load_yaml(tmp_path)
    assert load_yaml(write(tmp_path, "a: {b: [1, 2]}\n")) == {"a": {"b": [1, 2]}}
