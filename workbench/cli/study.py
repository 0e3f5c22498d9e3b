"""``workbench study``: validate, plan, run and inspect study files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workbench.cli.options import profile_option
from workbench.cli.runs import print_report
from workbench.workspace import Workspace


@click.group()
def study() -> None:
    """Validate, plan, run and inspect study files."""


@study.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@profile_option(help="Also resolve at this profile.")
@click.pass_obj
def study_validate(ws: Workspace, files: tuple[Path, ...], profile: str | None) -> None:
    """Check study files (schema, dotted keys, trial count, names of datasets, teachers, captioners,
    suites and the objective metric, every grid point's recipe); exit 2 on the first error. Creates nothing."""
    from workbench.study.references import load_checked
    from workbench.study.trials import validate_points

    for path in files:
        study = load_checked(path, ws)
        trials = validate_points(study, path, profile)
        click.echo(f"ok: {path} ({trials} grid trials" + (f", {study.search.trials} search trials)" if study.search
                                                          else ")"))


@study.command("plan")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@profile_option(help="Scale of the recipe [default: the study's].")
@click.option("--all", "every", is_flag=True, help="Every study file in --studies, as one bill.")
@click.option("--studies", type=click.Path(file_okay=False, path_type=Path), default=Path("studies"),
              show_default=True, help="Where --all finds study files.")
@click.option("--fresh", is_flag=True,
              help="Plan as a fresh clone would run it: no cached stage counts (the built data does).")
@click.pass_obj
def study_plan(ws: Workspace, files: tuple[Path, ...], profile: str | None, every: bool, studies: Path,
               fresh: bool) -> None:
    """List trials, stages to build, cache hits and the cost of running FILE. With several files (or
    --all), one line per study and every stage they need counted once, with the total."""
    import tempfile

    from workbench.study.plan import make_plan, render_all

    files = (*files, *sorted(studies.glob("*.yaml"))) if every else files
    if not files:
        raise click.UsageError("name study files, or --all")
    with tempfile.TemporaryDirectory(prefix="workbench-plan-") as tmp:
        if fresh:  # an empty workspace that sees the built data: every stage's key, none of the cache
            bare = Workspace.resolve(Path(tmp) / "ws", mlflow_uri=f"sqlite:///{tmp}/mlflow.db",
                                     optuna_storage=f"sqlite:///{tmp}/optuna.db")
            bare.root.mkdir(parents=True)
            if ws.data_dir.is_dir():
                bare.data_dir.symlink_to(ws.data_dir.resolve(), target_is_directory=True)
            ws = bare
        plans = [make_plan(file, ws, profile) for file in files]
    click.echo(plans[0].render() if len(plans) == 1 and not every else render_all(plans, fresh))


@study.command("run")
@click.argument("file", type=click.Path(path_type=Path))
@profile_option(help="Scale of the recipe [default: the study's].")
@click.option("--workers", type=click.IntRange(min=1),
              help="Trials run in this many local processes [default: cores ÷ the trials' train.threads]. "
                   "Each trial pins its own thread count, so this changes the wall time, never a number.")
@click.option("--report/--no-report", default=True, show_default=True, help="Print the study's table at the end.")
@click.pass_obj
def study_run(ws: Workspace, file: Path, profile: str | None, workers: int | None, report: bool) -> None:
    """Run every trial of FILE not already complete (finished trials and cached stages are reused)."""
    from workbench.study.orchestrate import run_study

    summary = run_study(file, ws, profile, workers)
    click.echo(f"{summary.name}: {summary.total} trials; {summary.reused} reused, {summary.ran} run, "
               f"{len(summary.failed)} failed" + (f", {summary.recovered} interrupted trials recovered"
                                                   if summary.recovered else ""))
    for line in summary.failed:
        click.echo(f"  failed {line}", err=True)
    if report:
        print_report(ws, file, profile, write=True)
    if summary.failed:
        sys.exit(1)


@study.command("worker")
@click.argument("file", type=click.Path(path_type=Path))
@profile_option(help="Scale of the recipe [default: the study's].")
@click.option("--heartbeat", "heartbeat_s", type=click.IntRange(min=1), default=30, show_default=True,
              help="Seconds between a running trial's heartbeats; a trial silent for 4 of them is taken "
                   "as dead and its point is queued again for another worker.")
@click.pass_obj
def study_worker(ws: Workspace, file: Path, profile: str | None, heartbeat_s: int) -> None:
    """Join FILE's study in the shared Optuna store and run its trials until none is left, then exit.

    Start any number, on any number of machines, all with the same store and cache: the Optuna store in
    PostgreSQL (WORKBENCH_OPTUNA_STORAGE=postgresql://user@host/db or --optuna-storage), the MLflow
    store every machine reaches (--mlflow-uri), and WORKBENCH_HOME on a path every machine mounts (the
    stage cache: a stage two workers need is built once, the other waits). No point runs twice; a worker
    that dies leaves its point to the others. Trials use the threads their recipe pins (train.threads)."""
    from workbench.study.orchestrate import join_study

    summary = join_study(file, ws, profile, heartbeat_s=heartbeat_s)
    click.echo(f"{summary.name}: {summary.total} trials; this worker ran {summary.ran}, "
               f"{len(summary.failed)} failed" + (f"; {summary.recovered} interrupted trials recovered"
                                                  if summary.recovered else ""))
    for line in summary.failed:
        click.echo(f"  failed {line}", err=True)
    if summary.failed:
        sys.exit(1)


@study.command("status")
@click.argument("file", type=click.Path(path_type=Path))
@profile_option()
@click.option("--all", "show_all", is_flag=True, help="Also list trials of points no longer in the study file.")
@click.pass_obj
def study_status(ws: Workspace, file: Path, profile: str | None, show_all: bool) -> None:
    """Show each trial's Optuna state, objective value and failure reason."""
    from workbench.study.status import render_status

    click.echo(render_status(file, ws, profile, show_all))
