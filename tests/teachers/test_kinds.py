"""Teacher kinds: every registered kind keys, describes, sizes and round-trips its entries; a kind defined
outside the project (here: a frozen random projection) plugs into the zoo, the teacher stage and the
reinforcement through the registry alone."""

import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
import torch
import torch.nn.functional as F
from pydantic import Field

import workbench.data.build as data_build
import workbench.teachers.kinds as teacher_kinds
from workbench.config.overrides import ConfigError
from workbench.evaluate.lineage import Lineage
from workbench.study.lineage import recipe_lineage
from workbench.teachers.kinds import (KindError, ScoredEntry, TeacherKind, kind_of, kinds, register_kind,
                                      suite_datasets, suite_input)
from workbench.teachers.kinds.lit import LitKind
from workbench.teachers.zoo import Zoo, load_zoo

SHIPPED = load_zoo()


def fake_fingerprints(monkeypatch) -> None:
    """Fixed fingerprints for the shipped datasets (not built here), where kinds and the train stage read them."""
    from workbench.train import stage as train_stage

    for module in (data_build, train_stage):
        monkeypatch.setattr(module, "dataset_fingerprints", lambda ws, names: {n: f"fp-{n}" for n in names})


def shipped_entries(kind: str) -> dict:
    return {name: spec for name, spec in SHIPPED.teachers.items() if spec.kind == kind}


# ------------------------------------------------------------------------------ every registered kind
@pytest.mark.parametrize("kind_name", sorted(kinds()))
def test_every_kind_keys_describes_sizes_and_round_trips_its_entries(kind_name, shapes_ws, monkeypatch):
    kind = kinds()[kind_name]
    entries = shipped_entries(kind_name)
    assert entries, f"the shipped zoo (workbench/teachers/zoo.yaml) has no {kind_name!r} entry to show it"
    fake_fingerprints(monkeypatch)
    for name, spec in entries.items():
        assert isinstance(spec, kind.spec) and kind_of(spec) is kind
        dumped = spec.model_dump(mode="json")
        assert kind.spec.model_validate(dumped) == spec
        assert Zoo.model_validate({"teachers": {name: dumped}}).teachers[name] == spec

        key = kind.key(name, spec, shapes_ws)
        assert len(key) == 16 and int(key, 16) >= 0
        assert kind.key(name, kind.spec.model_validate(dumped), shapes_ws) == key  # a function of the content
        held = kind.for_holdout(spec)
        assert (held == spec) == ("holdout" not in kind.spec.model_fields)
        if held != spec:
            assert kind.key(name, held, shapes_ws) != key

        assert kind.describe(spec).strip()
        assert kind.embed_dim(name, spec) > 0
        assert isinstance(kind.lineage(name, spec, f"teacher {name}", recipe_lineage), Lineage)
        needed = kind.required_datasets(name, spec, shapes_ws)
        assert needed and all(isinstance(d, str) for d in needed)
        seconds, what = kind.fit_estimate(name, spec, shapes_ws)
        assert (seconds is None or seconds >= 0) and what.strip()
        rate = kind.views_per_s(name, spec)
        assert rate is None or rate > 0


def test_shipped_pretrained_and_lit_teachers_keep_their_keys(monkeypatch):
    """Pinned: the keys of the shipped lit and open_clip entries (fixed fingerprints) as cached before the
    kinds registry existed. (The scratch entry's key follows the student recipe's defaults.)"""
    fake_fingerprints(monkeypatch)
    pinned = {"lite0-minilm": "df1e456413619933", "lite1-minilm": "0e56dd5902d27111",
              "dfn2b-vit-l-14": "3d108c579531580f", "dfn2b-vit-l-14-s39b": "ef5dab7dd137175c"}
    assert {name: kind_of(SHIPPED.teachers[name]).key(name, SHIPPED.teachers[name], None) for name in pinned} == pinned


def test_the_registry_imports_no_model_code():
    """The zoo (read by `study validate`) and every kind module load without open_clip or the fit code."""
    heavy = ["open_clip", "sentence_transformers", "efficientnet_lite_pytorch", "workbench.teachers.lit",
             "workbench.teachers.openclip", "workbench.teachers.fit", "workbench.models.encoder"]
    code = ("import sys; import workbench.teachers.zoo as zoo; from workbench.teachers.kinds import kinds; "
            f"kinds(); zoo.load_zoo(); print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------- registering a kind elsewhere
def test_a_kind_name_is_registered_once(monkeypatch):
    monkeypatch.setattr(teacher_kinds, "_KINDS", kinds())

    class AnotherLit(LitKind):
        pass

    with pytest.raises(KindError, match="'lit' is registered twice"):
        register_kind(AnotherLit)
    assert type(kinds()["lit"]) is LitKind


def test_a_kind_whose_entry_does_not_carry_its_name_is_refused(monkeypatch):
    monkeypatch.setattr(teacher_kinds, "_KINDS", kinds())

    class Misnamed(LitKind):
        name = "lit2"

    with pytest.raises(KindError, match="kind: Literal\\['lit2'\\]"):
        register_kind(Misnamed)
    assert "lit2" not in kinds()


class RandomTeacherSpec(ScoredEntry):
    kind: Literal["random"]
    embed_dim: int = Field(default=16, gt=0)
    image_size: int = Field(default=32, ge=8)
    seed: int = 0


class RandomModel(torch.nn.Module):
    """Frozen random projections: 4×4 average-pooled pixels and a caption's byte histogram → D."""

    def __init__(self, spec: RandomTeacherSpec):
        super().__init__()
        torch.manual_seed(spec.seed)
        self.image = torch.nn.Linear(3 * 4 * 4, spec.embed_dim)
        self.text = torch.nn.Linear(256, spec.embed_dim)
        self.logit_scale = torch.nn.Parameter(torch.tensor(2.0))
        self.requires_grad_(False)


class RandomEncoder:
    def __init__(self, spec: RandomTeacherSpec, model: RandomModel):
        self.model, self.image_size = model, spec.image_size

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.image(F.adaptive_avg_pool2d(pixels.float(), 4).flatten(1)), dim=-1)

    def encode_texts(self, texts) -> torch.Tensor:
        counts = torch.stack([torch.bincount(torch.tensor(list(t.encode()) or [0]), minlength=256).float()
                              for t in texts])
        return F.normalize(self.model.text(counts), dim=-1)


class RandomKind(TeacherKind):
    name = "random"
    spec = RandomTeacherSpec

    def identity(self, name, spec, ws):
        return spec.model_dump(mode="json"), suite_input(spec.suite)

    def required_datasets(self, name, spec, ws):
        return suite_datasets(spec.suite)

    def fit(self, name, spec, ws, out: Path, reporter, progress):
        model = RandomModel(spec)
        torch.save(model.state_dict(), out / "random.pt")
        return {"parameters": sum(p.numel() for p in model.parameters())}, spec.suite

    def load(self, name, spec, artifact: Path):
        model = RandomModel(spec)
        model.load_state_dict(torch.load(artifact / "random.pt", weights_only=True))
        return RandomEncoder(spec, model)

    def describe(self, spec):
        return f"random: {spec.embed_dim}-d projections, seed {spec.seed}"

    def embed_dim(self, name, spec):
        return spec.embed_dim


def test_a_kind_registered_from_outside_is_zoo_entry_teacher_stage_and_reinforcement_teacher(
        shapes_ws, shapes_suite, tmp_path, monkeypatch):
    from workbench.config.resolve import resolve_recipe
    from workbench.reinforce.plan import planned_inputs, teacher_dim
    from workbench.reinforce.stage import reinforce
    from workbench.reinforce.work import _encode_texts
    from workbench.stages.cache import StageCache
    from workbench.study.plan import _teacher_stages
    from workbench.teachers.fit import fit_teacher, list_teachers, load_teacher, teacher_key

    zoo_path = tmp_path / "zoo.yaml"
    zoo_path.write_text(f"teachers:\n  rand:\n    kind: random\n    suite: {shapes_suite}\n"
                        f"  rand-wide: {{kind: random, embed_dim: 24, seed: 1, suite: {shapes_suite}}}\n")
    with pytest.raises(ConfigError, match="Input tag 'random' found using 'kind' does not match"):
        load_zoo(zoo_path)  # not a kind yet

    monkeypatch.setattr(teacher_kinds, "_KINDS", kinds())  # this test's registry: undone after it
    register_kind(RandomKind)
    zoo = load_zoo(zoo_path)
    spec = zoo.teachers["rand"]
    assert isinstance(spec, RandomTeacherSpec) and isinstance(kind_of(spec), RandomKind)
    assert load_zoo(zoo_path, holdout=True) == zoo  # not fitted on the training data: nothing to hold out
    key = teacher_key("rand", spec, shapes_ws)
    assert key == teacher_key("rand", load_zoo(zoo_path).teachers["rand"], shapes_ws)
    assert key != teacher_key("rand-wide", zoo.teachers["rand-wide"], shapes_ws)
    assert "random: 16-d projections, seed 0" in list_teachers(shapes_ws, zoo_path)

    fitted = fit_teacher("rand", shapes_ws, zoo, progress=False)  # the teacher stage: fit, score, log, cache
    assert fitted.key == key and fitted.info["kind"] == "random" and fitted.info["embed_dim"] == 16
    assert fitted.info["fit"]["parameters"] > 0 and "avg" in fitted.metrics
    assert fit_teacher("rand", shapes_ws, zoo, progress=False).hit
    teacher = load_teacher("rand", shapes_ws, zoo)
    assert teacher.logit_scale == pytest.approx(torch.tensor(2.0).exp().item())
    assert teacher.encode_images(torch.rand(2, 3, 32, 32)).shape == (2, 16)

    recipe = resolve_recipe("clip", "smoke", [("test", {"data.train": ["shapes"], "reinforce.teachers": ["rand"],
                                                        "reinforce.zoo": str(zoo_path),
                                                        "reinforce.augmentations": 2})])
    assert planned_inputs(recipe.reinforce, ["shapes"], shapes_ws)["teachers"] == {"rand": key}
    assert teacher_dim("rand", recipe.reinforce, shapes_ws) == 16
    texts = _encode_texts([teacher], ["a red circle on the left", "a blue square on the top"])
    assert {tuple(v.shape) for v in texts.values()} == {(16,)}
    stages = _teacher_stages(recipe, {"teachers": {"rand": key}}, shapes_ws, StageCache(shapes_ws.cache_dir))
    assert [(s.name, s.state) for s in stages] == [("rand", "hit")]

    reinforced = reinforce(recipe, shapes_ws, progress=False)  # every augmented image through the teacher
    manifest = reinforced.dataset.manifest
    assert [(t["name"], t["dim"]) for t in manifest["teachers"]] == [("rand", 16)]
    assert manifest["samples"] > 0

    monkeypatch.undo()  # the registry as it was: the kind is gone again
    assert "random" not in kinds()
    with pytest.raises(ConfigError, match="Input tag 'random'"):
        load_zoo(zoo_path)
