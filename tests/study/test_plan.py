"""`study plan`: trials, cache state and cost, before and after a run."""

from workbench.study.orchestrate import run_study
from workbench.study.plan import make_plan


def test_plan_shows_misses_then_hits(shapes_ws, shapes_study):
    before = make_plan(shapes_study, shapes_ws)
    assert len(before.trials) == 4 and {t.train for t in before.trials} == {"run"}
    assert before.samples_to_train == 4 * 6 * 16
    assert before.stored_bytes() > 0
    text = before.render()
    assert "0/4 trainings reused" in text and "datasets ready: shapes" in text

    run_study(shapes_study, shapes_ws, progress=False)
    after = make_plan(shapes_study, shapes_ws)
    assert {(t.train, t.eval) for t in after.trials} == {("hit", "hit")}
    assert after.samples_to_train == 0
