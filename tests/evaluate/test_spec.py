import pytest

from workbench.config.files import DEFAULT_SUITE
from workbench.evaluate.spec import RetrievalTask, Suite, ZeroShotTask, load_suite


def test_default_suite_loads_and_headlines_refer_to_its_tasks():
    suite = load_suite()
    names = {t.name for t in suite.tasks}
    assert {"zeroshot", "retrieval", "avg"} <= set(suite.headline)
    for column, spec in suite.headline.items():
        assert spec.tasks == "all" or set(spec.tasks) <= names, column
    assert all(t.split == "eval" for t in suite.tasks)
    kinds = {type(t) for t in suite.column_tasks("zeroshot")} | {type(t) for t in suite.column_tasks("retrieval")}
    assert kinds == {ZeroShotTask, RetrievalTask}
    assert all(isinstance(t, ZeroShotTask) for t in suite.column_tasks("zeroshot"))
    assert all(isinstance(t, RetrievalTask) for t in suite.column_tasks("retrieval"))
    assert {t.domain for t in suite.tasks} == {"in-domain", "transfer"}
    assert load_suite(DEFAULT_SUITE) == suite


def test_the_validation_suite_mirrors_the_default_one_on_the_slice_only():
    default, validation = load_suite(), load_suite("validation")
    assert all(t.split == "validation" for t in validation.tasks)  # tuning never reads the eval split
    assert {t.name for t in validation.tasks} <= {t.name for t in default.tasks}
    assert validation.headline["zeroshot"] == default.headline["zeroshot"]
    assert validation.headline["retrieval"] == default.headline["retrieval"]


def _suite(**changes) -> dict:
    raw = {"tasks": [{"name": "zs_a", "kind": "zeroshot", "dataset": "a", "field": "f", "domain": "transfer",
                      "templates": ["a {}."]}],
           "headline": {"zeroshot": {"tasks": ["zs_a"]}}}
    raw.update(changes)
    return raw


@pytest.mark.parametrize("raw, message", [
    (_suite(headline={"zeroshot": {"tasks": ["zs_missing"]}}), "zs_missing"),
    (_suite(headline={"zeroshot": {"tasks": ["zs_a"], "metric": "r1"}}), "no metric 'r1'"),
    (_suite(tasks=[{"name": "zs_a", "kind": "zeroshot", "dataset": "a", "field": "f", "domain": "transfer",
                    "templates": ["no slot"]}]), "exactly one"),
    (_suite(tasks=[{"name": "r", "kind": "retrieval", "dataset": "a", "domain": "transfer", "typo": 1}]), "typo"),
    (_suite(tasks=[{"name": "r", "kind": "retrieval", "dataset": "a", "domain": "transfer"}] * 2,
            headline={}), "duplicate"),
])
def test_bad_suites_are_rejected_with_the_offending_key(tmp_path, raw, message):
    import yaml

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=message) as err:
        load_suite(path)
    assert str(path) in str(err.value)


def test_minimal_suite_defaults():
    suite = Suite.model_validate(_suite())
    task = suite.tasks[0]
    assert task.split == "eval" and task.primary == "balanced_acc" and task.min_per_class == 1
    assert RetrievalTask(name="r", kind="retrieval", dataset="a", domain="transfer").dedupe_captions
