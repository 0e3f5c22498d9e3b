"""Captioner kinds: every registered kind keys, describes and round-trips its entries; a kind registered
from outside the project validates in a registry file and keys without any project module knowing it."""

from typing import Literal

import pytest

import workbench.captioners.kinds as captioner_kinds
import workbench.data.build as data_build
from workbench.captioners.fit import captioner_key, fit_captioner, list_captioners
from workbench.captioners.kinds import (CaptionerEntry, CaptionerFit, KindError, PretrainKind, kind_of, kinds,
                                        register_kind)
from workbench.captioners.spec import Registry, lineage, load_registry, root_model
from workbench.config.overrides import ConfigError

SHIPPED = load_registry()


@pytest.fixture
def fake_fingerprints(monkeypatch):
    monkeypatch.setattr(data_build, "dataset_fingerprints", lambda ws, names: {n: f"fp-{n}" for n in names})


@pytest.mark.parametrize("kind_name", sorted(kinds()))
def test_every_kind_keys_describes_and_round_trips_its_entries(kind_name, fake_fingerprints):
    kind = kinds()[kind_name]
    entries = {name: spec for name, spec in SHIPPED.captioners.items() if spec.kind == kind_name}
    assert entries, f"the shipped registry (workbench/captioners/captioners.yaml) has no {kind_name!r} entry"
    assert kind.command in ("fit", "finetune")  # the `workbench captioner` commands
    for name, spec in entries.items():
        assert isinstance(spec, kind.spec) and kind_of(spec) is kind
        dumped = spec.model_dump(mode="json")
        assert kind.spec.model_validate(dumped) == spec
        again = Registry.model_validate({"captioners": SHIPPED.model_dump(mode="json")["captioners"]})
        assert again.captioners[name] == spec

        key = kind.key(name, spec, SHIPPED, None)
        assert len(key) == 16 and key == captioner_key(name, SHIPPED, None)
        assert kind.key(name, kind.spec.model_validate(dumped), SHIPPED, None) == key
        assert kind.key(name, spec.model_copy(update={"seed": spec.seed + 1}), SHIPPED, None) != key

        parent = kind.parent(spec)
        assert (parent is None) == (kind.model(spec) is not None)  # a root names its model, the rest a parent
        assert lineage(name, SHIPPED)[-2:] == ([parent, name] if parent else [name])
        assert root_model(name, SHIPPED)
        assert kind.describe(spec).strip() and kind.stage_label(spec).strip()


def test_a_kind_name_is_registered_once(monkeypatch):
    monkeypatch.setattr(captioner_kinds, "_KINDS", kinds())

    class AnotherPretrain(PretrainKind):
        pass

    with pytest.raises(KindError, match="'pretrain' is registered twice"):
        register_kind(AnotherPretrain)
    assert type(kinds()["pretrain"]) is PretrainKind


class FrozenSpec(CaptionerEntry):
    """A root captioner named by its open_clip model (a test-only kind)."""

    kind: Literal["frozen"]
    model: str = "micro-coca-xs"
    fit: CaptionerFit = CaptionerFit(steps=1)


class FrozenKind(PretrainKind):
    name = "frozen"
    spec = FrozenSpec

    def describe(self, spec):
        return f"frozen {spec.model}"


def test_a_kind_registered_from_outside_validates_keys_and_lists(shapes_ws, tmp_path, fake_fingerprints,
                                                                  monkeypatch):
    path = tmp_path / "captioners.yaml"
    path.write_text("captioners:\n  base: {kind: frozen, data: [shapes]}\n"
                    "  tuned: {kind: finetune, parent: base, data: [shapes]}\n")
    with pytest.raises(ConfigError, match="Input tag 'frozen'"):
        load_registry(path)  # not a kind yet

    monkeypatch.setattr(captioner_kinds, "_KINDS", kinds())  # this test's registry: undone after it
    register_kind(FrozenKind)
    registry = load_registry(path)
    assert isinstance(kind_of(registry.captioners["base"]), FrozenKind)
    assert lineage("tuned", registry) == ["base", "tuned"] and root_model("tuned", registry) == "micro-coca-xs"
    base, tuned = captioner_key("base", registry, None), captioner_key("tuned", registry, None)
    assert len({base, tuned}) == 2 and base == captioner_key("base", load_registry(path), None)
    assert captioner_key("base", registry.for_holdout(True), None) != base
    listing = list_captioners(shapes_ws, path).splitlines()
    assert "frozen micro-coca-xs on shapes" in listing[0] and "finetune of base on shapes" in listing[1]
    with pytest.raises(ConfigError, match="is a frozen captioner; run `workbench captioner fit base`"):
        fit_captioner("base", shapes_ws, registry, progress=False, expect="finetune")  # `fit` builds it

    monkeypatch.undo()
    assert "frozen" not in kinds()
