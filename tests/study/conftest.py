from pathlib import Path

import pytest


def write_study(path: Path, suite: str, axes: str, extra: str = "", seeds: int = 2) -> Path:
    path.write_text(f"""
study: shapes-test
profile: smoke
set:
  data.train: [shapes]
  data.max_train_samples: 96
  eval.suite: {suite}
  train.steps: 6
  train.eval_every: 3
axes:
{axes}
seeds: {seeds}
table: {{rows: lr, metrics: [zeroshot, retrieval, avg]}}
{extra}
""")
    return path


@pytest.fixture
def study_writer(shapes_suite: str):
    """``study_writer(path, axes, extra="", seeds=2)`` writes a smoke-profile shapes study."""
    return lambda path, axes, extra="", seeds=2: write_study(path, shapes_suite, axes, extra, seeds)


@pytest.fixture
def shapes_study(tmp_path: Path, shapes_suite: str) -> Path:
    return write_study(tmp_path / "study.yaml", shapes_suite, "  lr: {key: train.lr, values: [1.0e-3, 3.0e-3]}")
