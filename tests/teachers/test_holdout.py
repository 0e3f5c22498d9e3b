"""Teacher fits honour data.holdout under their own keys; every other fit keeps its key; fits pin threads."""

import os

import pytest
import torch

import workbench.data.build as data_build
import workbench.teachers.fit as teacher_fit
from workbench.data.arrays import load_split_arrays
from workbench.teachers.fit import teacher_key
from workbench.teachers.kinds.scratch import scratch_recipe
from workbench.teachers.lit import load_pairs
from workbench.teachers.zoo import LitTeacherSpec, OpenClipTeacherSpec, ScratchTeacherSpec, load_zoo
from workbench.threads import FIT_THREADS, resolve_threads


def tiny_spec(suite: str, **update) -> LitTeacherSpec:
    return LitTeacherSpec(kind="lit", image_tower="efficientnet-lite0", image_size=32, embed_dim=32, hidden=64,
                          data=["shapes"], suite=suite, **update)


def test_a_non_holdout_key_is_the_one_fits_were_cached_under(shapes_ws, tmp_path, monkeypatch):
    """Pinned: the key of this spec before holdout fits existed (fixed fingerprints, the shapes suite)."""
    from tests.conftest import SHAPES_SUITE

    monkeypatch.chdir(tmp_path)  # the spec names its suite by a relative path: part of the key
    (tmp_path / "suite.yaml").write_text(SHAPES_SUITE)
    monkeypatch.setattr(data_build, "dataset_fingerprints", lambda ws, names: {n: f"fp-{n}" for n in names})
    assert teacher_key("x", tiny_spec("suite.yaml"), shapes_ws) == "83e69152e655d4e5"
    assert teacher_key("x", tiny_spec("suite.yaml", holdout=True), shapes_ws) != "83e69152e655d4e5"


def test_the_holdout_zoo_refits_every_fitted_teacher_and_leaves_open_clip_alone():
    plain, held = load_zoo(), load_zoo(holdout=True)
    assert load_zoo(holdout=False) == plain
    for name, spec in held.teachers.items():
        if isinstance(spec, OpenClipTeacherSpec):
            assert spec == plain.teachers[name]
        else:
            assert spec.holdout and not plain.teachers[name].holdout
            assert "holdout" not in plain.teachers[name].model_dump()


def test_a_holdout_lit_fit_leaves_the_validation_slice_out(shapes_ws, shapes_suite):
    train = load_split_arrays(shapes_ws.dataset_dir("shapes"), "train", 32, progress=False)
    slice_captions = [c for c, v in zip(train.captions, train.validation_mask()) if v]
    assert slice_captions  # the shapes set has a validation slice to leave out
    full = load_pairs(tiny_spec(shapes_suite), shapes_ws, False)
    held = load_pairs(tiny_spec(shapes_suite, holdout=True), shapes_ws, False)
    assert len(full.captions) == len(train)
    assert len(held.captions) == len(train) - len(slice_captions)
    held_key = teacher_key("t", tiny_spec(shapes_suite, holdout=True), shapes_ws)
    assert held_key != teacher_key("t", tiny_spec(shapes_suite), shapes_ws)


def test_a_holdout_scratch_teacher_trains_with_data_holdout(shapes_ws, shapes_suite):
    spec = ScratchTeacherSpec(kind="scratch", profile="smoke",
                              set={"data.train": ["shapes"], "eval.suite": shapes_suite, "train.steps": 6})
    held = spec.model_copy(update={"holdout": True})
    assert not scratch_recipe("s", spec).data.holdout and scratch_recipe("s", held).data.holdout
    assert teacher_key("s", spec, shapes_ws) != teacher_key("s", held, shapes_ws)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: every count is the same")
def test_a_fit_runs_on_its_own_thread_count_and_restores_the_callers(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(teacher_fit, "_fit", lambda *args: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher_fit._build("t", None, "key", None, tmp_path, None, False)
        assert seen == [resolve_threads(FIT_THREADS)] and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_holdout_recipe_reinforces_with_holdout_teachers(shapes_ws, shapes_suite, tmp_path):
    from workbench.config.resolve import resolve_recipe
    from workbench.reinforce.plan import planned_inputs, reinforce_key

    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(f"teachers:\n  tiny: {tiny_spec(shapes_suite).model_dump_json()}\n")
    recipes = [resolve_recipe("clip", "smoke", [("test", {"data.train": ["shapes"], "data.holdout": holdout,
                                                          "reinforce.teachers": ["tiny"], "reinforce.zoo": str(zoo)})])
               for holdout in (False, True)]
    plain, held = (planned_inputs(r.reinforce, ["shapes"], shapes_ws, r.data.holdout)["teachers"]["tiny"]
                   for r in recipes)
    assert plain == teacher_key("tiny", tiny_spec(shapes_suite), shapes_ws)
    assert held == teacher_key("tiny", tiny_spec(shapes_suite, holdout=True), shapes_ws)
    assert reinforce_key(recipes[0], shapes_ws) != reinforce_key(recipes[1], shapes_ws)
