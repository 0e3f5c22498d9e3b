"""Per-trial lineage: which tasks a student truly never saw, through its teachers and captioners too."""

import pytest

from workbench.config.resolve import resolve_recipe
from workbench.data.shards import write_dataset
from workbench.evaluate.data import prepare_task
from workbench.evaluate.lineage import overlaps, render, transfer_scores
from workbench.evaluate.spec import TRANSFER, DataRef, Suite, load_suite
from workbench.study.lineage import checkpoint_lineage, recipe_lineage

EMOJI_TASKS = {"zs_emoji_category", "ret_emoji"}


def statuses(sets: dict) -> dict[str, list[str]]:
    """Task → who saw it, for the smoke recipe with ``sets`` against the default suite."""
    recipe = resolve_recipe("clip", "smoke", [("test", sets)])
    return {name: row["seen_by"] for name, row in recipe_lineage(recipe).tasks(load_suite()).items()}


def test_a_plain_student_has_seen_only_its_own_set():
    seen = statuses({"data.train": ["clipart-web"]})
    assert seen["zs_clipart_category"] == seen["ret_clipart"] == ["student"]
    assert all(not by for task, by in seen.items() if task not in ("zs_clipart_category", "ret_clipart"))


def test_distilled_with_the_tuxpaint_captioner_leaves_ret_tuxpaint_and_emoji_unseen():
    seen = statuses({"data.train": ["clipart-web"], "reinforce.teachers": ["lite0-minilm"],
                     "reinforce.captioners": ["clipart-web", "tuxpaint"]})
    assert seen["ret_tuxpaint"] == []  # the captioner fine-tunes on the other tuxpaint categories
    assert all(seen[task] == [] for task in EMOJI_TASKS | {"zs_fashion_mnist", "zs_digits"})
    assert seen["ret_glyphs"] == ["teacher lite0-minilm"]  # the teacher fits on both base sets
    assert "captioner tuxpaint, its parent clipart-web" in seen["ret_clipart"]


@pytest.mark.parametrize("captioner", ["emoji", "tuxpaint+emoji"])
def test_an_emoji_captioner_makes_the_emoji_tasks_seen(captioner):
    seen = statuses({"reinforce.teachers": ["lite0-minilm"], "reinforce.captioners": [captioner]})
    assert all(seen[task] == [f"captioner {captioner}"] for task in EMOJI_TASKS)
    assert seen["ret_tuxpaint"] == []


def test_captions_the_student_never_uses_do_not_count():
    seen = statuses({"reinforce.teachers": ["lite0-minilm"], "reinforce.captioners": ["emoji"],
                     "distill.synthetic_captions": 0})
    assert all(seen[task] == [] for task in EMOJI_TASKS)


def test_a_scratch_teacher_brings_its_own_training_sets():
    seen = statuses({"data.train": ["glyphs"], "reinforce.teachers": ["scratch-vit-s"]})
    assert seen["ret_clipart"] == ["teacher scratch-vit-s"]


@pytest.mark.parametrize("a, b, shared", [
    ({}, {}, True),
    ({"where": {"c": ["x", "y"]}}, {"where": {"c": ["z"]}}, False),
    ({"where": {"c": ["x", "y"]}}, {"where": {"c": ["y"]}}, True),
    ({"where": {"c": ["x"]}}, {"exclude": {"c": ["x", "y"]}}, False),
    ({"where": {"c": ["x", "z"]}}, {"exclude": {"c": ["x"]}}, True),
    ({"exclude": {"c": ["x"]}}, {"exclude": {"c": ["y"]}}, True),
    ({"where": {"c": ["x"]}}, {"where": {"d": ["y"]}}, True),   # other fields: cannot tell, so shared
    ({"where": {"c": ["x"]}}, {}, True),
])
def test_references_overlap_unless_a_field_keeps_no_label_in_common(a, b, shared):
    assert overlaps(DataRef(dataset="s", **a), DataRef(dataset="s", **b)) is shared
    assert overlaps(DataRef(dataset="s", **b), DataRef(dataset="s", **a)) is shared
    assert not overlaps(DataRef(dataset="s", **a), DataRef(dataset="t", **b))


def test_transfer_averages_the_primary_metric_of_unseen_tasks_only():
    recipe = resolve_recipe("clip", "smoke", [("test", {"data.train": ["clipart-web"]})])
    suite, lineage = load_suite(), recipe_lineage(recipe)
    result = {"tasks": [{"name": t.name} for t in suite.tasks],
              "metrics": {f"{t.name}/{t.primary}": i / 10 for i, t in enumerate(suite.tasks)},
              "chance": {f"{t.name}/{t.primary}": 0.1 for t in suite.tasks},
              "stderr": {f"{t.name}/{t.primary}": 0.02 for t in suite.tasks}}
    metrics, chance, stderr = transfer_scores(result, suite, lineage)
    unseen = [i / 10 for i, t in enumerate(suite.tasks) if t.name not in ("zs_clipart_category", "ret_clipart")]
    assert metrics[TRANSFER] == pytest.approx(sum(unseen) / len(unseen))
    assert chance[TRANSFER] == pytest.approx(0.1)
    assert stderr[TRANSFER] == pytest.approx(0.02 / len(unseen) ** 0.5)
    printed = render(lineage, suite, result)
    assert f"transfer = {metrics[TRANSFER]:.4f}" in printed and "ret_tuxpaint           transfer  -> unseen" in printed


def test_a_checkpoint_without_its_recipe_has_no_lineage(tmp_path):
    assert checkpoint_lineage(tmp_path / "model.pt") is None
    recipe = resolve_recipe("clip", "smoke", [("test", {"data.train": ["glyphs"]})])
    (tmp_path / "recipe.json").write_text(recipe.model_dump_json())
    assert checkpoint_lineage(tmp_path / "model.pt").trained[0].ref == DataRef(dataset="glyphs")


def test_a_task_filter_scores_only_the_classes_it_names(tmp_path):
    from tests.conftest import shapes_samples
    from workbench.workspace import Workspace

    ws = Workspace.resolve(tmp_path).ensure()
    write_dataset(ws.dataset_dir("shapes"), "shapes", shapes_samples(), eval_fraction=0.25)
    suite = Suite.model_validate({"tasks": [
        {"name": "ret_all", "kind": "retrieval", "dataset": "shapes", "domain": "transfer", "dedupe_captions": False},
        {"name": "ret_circles", "kind": "retrieval", "dataset": "shapes", "domain": "transfer",
         "dedupe_captions": False, "where": {"shape": ["circle"]}},
        {"name": "ret_no_circles", "kind": "retrieval", "dataset": "shapes", "domain": "transfer",
         "dedupe_captions": False, "exclude": {"shape": ["circle"]}}]})
    everything, circles, others = (prepare_task(t, ws.dataset_dir("shapes"), 32, 0) for t in suite.tasks)
    assert circles.captions and all("circle" in c for c in circles.captions)
    assert others.captions and not any("circle" in c for c in others.captions)
    assert len(circles.indices) + len(others.indices) == len(everything.indices)
    bad = suite.tasks[1].model_copy(update={"where": {"size": ["big"]}})
    with pytest.raises(ValueError, match="ret_circles.*no class field"):
        prepare_task(bad, ws.dataset_dir("shapes"), 32, 0)


def test_unfiltered_tasks_dump_as_before_filters_existed():
    task = load_suite().task("ret_clipart")
    assert "where" not in task.model_dump() and "exclude" not in task.model_dump()
    assert load_suite().task("ret_tuxpaint").model_dump()["where"] == {"category": [
        "symbols", "town", "household", "clothes", "plants", "space", "military", "medical"]}


def test_a_run_prints_and_logs_which_tasks_it_saw(shapes_ws, shapes_suite):
    from mlflow import MlflowClient

    from workbench.study.lineage import log_lineage
    from workbench.study.pipeline import run_trial_stages
    from workbench.study.single import train_single
    from workbench.tracking.mlflow_store import TAG_PREFIX, Tracker

    sets = ("data.train=[shapes]", f"eval.suite={shapes_suite}")
    printed = train_single("clip", "smoke", sets, shapes_ws)
    assert "zs_shapes              in-domain -> seen by student" in printed
    assert "transfer: no task is unseen by this student" in printed

    recipe = resolve_recipe("clip", "smoke", [("test", {"data.train": ["shapes"], "eval.suite": shapes_suite})])
    outcome = run_trial_stages(recipe, shapes_ws, progress=False)  # cached by now: the lineage is added anyway
    assert outcome.all_hits and TRANSFER not in outcome.metrics
    assert outcome.lineage["tasks"]["ret_shapes"] == {"data": "shapes", "declared": "in-domain", "unseen": False,
                                                      "seen_by": ["student"]}
    tracker = Tracker(shapes_ws)
    run_id = tracker.start_run("lineage", "trial", {})
    log_lineage(tracker, run_id, outcome.lineage)
    client = MlflowClient(tracking_uri=shapes_ws.mlflow_uri)
    tags = client.get_run(run_id).data.tags
    assert tags[f"{TAG_PREFIX}lineage.zs_shapes"] == "seen by student" and tags[f"{TAG_PREFIX}lineage.unseen"] == ""
    assert [a.path for a in client.list_artifacts(run_id, "eval")] == ["eval/lineage.json"]
