"""End to end through the command line, as a user would, on real (subset) data at the smoke profile."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.config.resolve import recipe_profiles, resolve_recipe

ROOT = Path(__file__).parents[1]
STUDIES = sorted(ROOT.joinpath("studies").glob("*.yaml"))
HEAVY = {"torch", "torchvision", "open_clip", "mlflow", "optuna"}


def imported_modules(*args: str) -> set[str]:
    """Top-level packages ``python -m workbench ARGS`` imports (from ``-X importtime``), after checking it succeeds."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "workbench", *args], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "workbench.cli" in lines
    return {name.split(".")[0] for name in lines}


@pytest.mark.parametrize("args", [["--help"], ["study", "validate", "studies/quickstart.yaml"]],
                         ids=["help", "validate"])
def test_help_and_validate_import_no_heavy_library(args, tmp_path):
    assert imported_modules("--workspace", str(tmp_path / "ws"), *args) & HEAVY == set()
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("profile", recipe_profiles())
def test_every_shipped_study_validates(profile, tmp_path):
    result = CliRunner().invoke(main, ["--workspace", str(tmp_path), "study", "validate", "--profile", profile,
                                       *map(str, STUDIES)])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok: ") == len(STUDIES) >= 2


def test_under_the_paper_profile_every_shipped_study_is_the_papers_setting():
    """Relative keys only: no study pins micro's steps or batch, so `--profile paper` scales every trial
    (the paper: MobileCLIP-B, batch 8192, 30k steps; a study may train a fraction of them)."""
    from workbench.config.study import load_study
    from workbench.study.trials import expand_grid

    paper = resolve_recipe("clip", "paper", [])
    for path in STUDIES:
        for spec in expand_grid(load_study(path), path, "paper"):
            train = spec.recipe.train
            assert spec.recipe.model.name == paper.model.name, path.name
            assert train.batch_size >= paper.train.batch_size // 2, (path.name, train.batch_size)
            assert train.steps >= paper.train.steps // 8, (path.name, train.steps)


def test_quickstart_study_runs_reports_and_reuses(real_root, tmp_path):
    runner = CliRunner()
    ws = ["--workspace", str(real_root)]
    study = str(Path(__file__).parents[1] / "studies" / "quickstart.yaml")

    planned = runner.invoke(main, [*ws, "study", "plan", study, "--profile", "smoke"])
    assert planned.exit_code == 0, planned.output
    assert "0/4 trainings reused" in planned.output

    ran = runner.invoke(main, [*ws, "study", "run", study, "--profile", "smoke", "--no-report"])
    assert ran.exit_code == 0, ran.output
    assert "4 trials; 0 reused, 4 run, 0 failed" in ran.output

    again = runner.invoke(main, [*ws, "study", "run", study, "--profile", "smoke", "--no-report"])
    assert "4 trials; 4 reused, 0 run" in again.output

    status = runner.invoke(main, [*ws, "study", "status", study, "--profile", "smoke"])
    assert "grid: 4/4 points complete" in status.output

    studies = Path(study).parent
    report = runner.invoke(main, [*ws, "report", "--all", "--studies", str(studies), "--profile", "smoke",
                                  "--out", str(tmp_path)])
    assert report.exit_code == 0, report.output
    assert "| clipart-web |" in report.output and " ± " in report.output
    written = sorted(p.name for p in (tmp_path / "quickstart").iterdir())
    assert written == [f"quickstart-smoke.{suffix}" for suffix in ("csv", "html", "md", "png", "tex")]
    assert f"skipped {studies / 'baseline_clip.yaml'}: no finished trial runs" in report.output  # none at smoke
    cells = pd.read_csv(tmp_path / "quickstart" / "quickstart-smoke.csv")  # each cell's share of the cost
    assert (cells["cost_wall_seconds"] > 0).all() and (cells["cost_samples_seen"] > 0).all()
    assert "## Cost" in report.output and "4 of 4 runs logged a ledger" in report.output


def test_plan_all_bills_every_shipped_study_with_shared_stages_once(real_root):
    studies = ROOT / "studies"
    result = CliRunner().invoke(main, ["--workspace", str(real_root), "study", "plan", "--all", "--fresh",
                                       "--studies", str(studies), "--profile", "smoke"])
    assert result.exit_code == 0, result.output
    for path in studies.glob("*.yaml"):
        assert f"\n{path.stem} " in result.output
    teachers = [line for line in result.output.splitlines() if line.startswith("teacher ")]
    assert len(teachers) == len(set(teachers)) >= 3  # lite0, lite1, scratch: each fit listed once
    assert "total from a fresh clone" in result.output
    assert "data not built yet" not in result.output


def test_plan_all_before_the_data_is_built_says_its_bill_is_partial(tmp_path):
    result = CliRunner().invoke(main, ["--workspace", str(tmp_path), "study", "plan", "--all", "--fresh",
                                       "--studies", str(ROOT / "studies")])
    assert result.exit_code == 0, result.output
    assert "data not built yet (clipart-web, " in result.output and "workbench data build` first" in result.output


def test_plan_all_under_the_paper_profile_bills_gpu_trainings_in_gpu_hours(tmp_path):
    result = CliRunner().invoke(main, ["--workspace", str(tmp_path), "study", "plan", "--all", "--fresh",
                                       "--studies", str(ROOT / "studies"), "--profile", "paper"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if " paper " in line]
    assert len(rows) == len(list((ROOT / "studies").glob("*.yaml"))) and all("GPU-h" in row for row in rows)
    assert "trainings and evals ~0 s" in result.output  # no GPU training priced as CPU time
    assert "GPU trainings (bf16), not in that total: ~" in result.output


def test_train_and_eval_commands(real_root):
    runner = CliRunner()
    ws = ["--workspace", str(real_root)]
    trained = runner.invoke(main, [*ws, "train", "--profile", "smoke", "--set", "data.train=[glyphs]"])
    assert trained.exit_code == 0, trained.output
    checkpoint = next(line.split(": ", 1)[1] for line in trained.output.splitlines() if line.startswith("model: "))
    evaluated = runner.invoke(main, [*ws, "eval", checkpoint])
    assert evaluated.exit_code == 0, evaluated.output
    assert "zs_glyphs_block" in evaluated.output and "chance" in evaluated.output


def test_bad_set_override_is_a_config_error(tmp_path):
    result = CliRunner().invoke(main, ["--workspace", str(tmp_path), "train", "--set", "train.lrate=1"])
    assert result.exit_code == 2
    assert "unknown key 'train.lrate'" in result.stderr
