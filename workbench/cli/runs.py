"""``workbench train``, ``reinforce``, ``eval``, ``models``, ``report``, ``ui`` and ``export``: single runs
outside a study, and looking at (and sharing) results."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.options import profile_option
from workbench.workspace import Workspace


# ---------------------------------------------------------------- train / eval
@click.command("train")
@click.option("--recipe", default="clip", show_default=True)
@profile_option(default="micro", show_default=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Dotted override, YAML value (repeatable).")
@click.option("--resolved", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Train exactly this resolved recipe (a trial's config/resolved.yaml) instead of --recipe, "
                   "--profile and --set.")
@click.pass_obj
def train(ws: Workspace, recipe: str, profile: str, sets: tuple[str, ...], resolved: Path | None) -> None:
    """Train (or reuse) one student outside any study and print its eval table. Under torchrun every
    process trains its share of each batch, and rank 0 writes, evaluates and prints."""
    from workbench.study.single import train_resolved, train_single

    if resolved and sets:
        raise click.UsageError("--resolved is the whole recipe: drop --set (edit the file instead)")
    click.echo(train_resolved(resolved, ws.ensure()) if resolved else train_single(recipe, profile, sets, ws.ensure()))


@click.command("reinforce")
@click.option("--recipe", default="clip", show_default=True)
@profile_option(default="micro", show_default=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Dotted override, YAML value (repeatable), e.g. reinforce.teachers=[lite0-minilm].")
@click.option("--workers", type=int, help="Local processes [default: reinforce.workers].")
@click.pass_obj
def reinforce_command(ws: Workspace, recipe: str, profile: str, sets: tuple[str, ...], workers: int | None) -> None:
    """Reinforce the recipe's training sets (MobileCLIP's dataset reinforcement).

    Stores, per image, K augmentations with every teacher's embedding of each, S synthetic captions per
    captioner, and the teachers' embeddings of the ground truth and of each synthetic caption, as
    DataCompDR-layout shards. Fits missing teachers and captioners first. Cached by content; a killed
    run resumes at its first unfinished shard; under torchrun (RANK / WORLD_SIZE) machines write
    disjoint shards and rank 0 commits. Example:

    \b
    workbench reinforce --set reinforce.teachers=[lite0-minilm] --set reinforce.captioners=[tuxpaint]
    """
    from workbench.config.resolve import resolve_recipe
    from workbench.reinforce.stage import reinforce
    from workbench.study.single import parse_sets

    overrides = parse_sets(sets) | ({"reinforce.workers": workers} if workers else {})
    result = reinforce(resolve_recipe(recipe, profile, [("--set", overrides)]), ws.ensure())
    click.echo(result.render())


@click.command("eval")
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@click.option("--suite", help="Eval-suite YAML, or `validation` for the shipped tuning suite "
                               "[default: the built-in suite].")
@click.pass_obj
def evaluate(ws: Workspace, checkpoint: Path, suite: str | None) -> None:
    """Run the eval suite on a trained student (a model.pt from the stage cache)."""
    from workbench.evaluate.lineage import render
    from workbench.evaluate.spec import load_suite
    from workbench.evaluate.suite import run_suite
    from workbench.models.students import load_trained
    from workbench.study.lineage import checkpoint_lineage

    try:
        chosen = load_suite(suite)
    except FileNotFoundError as error:
        raise click.BadParameter(str(error), param_hint="--suite") from None
    result = run_suite(load_trained(checkpoint), ws, chosen, progress=True)
    click.echo(result.to_table() + "\n\n" + render(checkpoint_lineage(checkpoint), chosen, result.to_dict()))


@click.command("models")
@click.option("--latency", is_flag=True,
              help="Time each student's towers at batch 1, before and after reparameterisation, and write the table.")
@click.option("--name", "names", multiple=True, metavar="MODEL",
              help="A student to time (repeatable) [default: the micro configs and the papers' students].")
@click.option("--repeats", type=click.IntRange(min=1), default=10, show_default=True, help="Timed runs per tower.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed runs first.")
@click.option("--device", help="Where to time them [default: cuda if available, else cpu].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("reports/students.md"),
              show_default=True, help="The Markdown table; its numbers, per device, go to the .json beside it.")
def models(latency: bool, names: tuple[str, ...], repeats: int, warmup: int, device: str, out: Path) -> None:
    """List students: registered micro configs (with parameter counts) and open_clip names.

    With --latency: parameters of each tower and batch-1 latency before and after structural
    reparameterisation (MobileCLIP2 Tab. 8's columns) on this machine. Measurements are kept per device in
    OUT's .json, so running the same command on a GPU machine adds its columns to the table. Example:

    \b
    workbench models --latency --name MobileCLIP2-S0 --name MobileCLIP2-B
    """
    from workbench.config.recipe import ModelConfig
    from workbench.models.students import configured_image_size, count_parameters, create_student, list_students

    if latency:
        _latency_table(list(names), repeats, warmup, device, out)
        return
    listing = list_students()
    for name in listing["micro"]:
        params = count_parameters(create_student(ModelConfig(name=name)))
        click.echo(f"{name:16} {configured_image_size(name):4d}px  {params['total'] / 1e6:6.2f}M params "
                   f"(image {params['image'] / 1e6:.2f}M, text {params['text'] / 1e6:.2f}M)")
    click.echo("open_clip: " + ", ".join(listing["open_clip"]))


def _latency_table(names: list[str], repeats: int, warmup: int, device: str | None, out: Path) -> None:
    """Time each student, saving each as it is measured (an interrupted run keeps what it timed), then
    write the table of every device measured so far."""
    from dataclasses import asdict

    import torch
    from tqdm import tqdm

    from workbench.models.latency import default_students, device_name, measure
    from workbench.models.students import configured_image_size
    from workbench.report.students import record, render

    for name in names:  # every name checked before the first minute of timing
        try:
            configured_image_size(name)
        except ValueError as error:
            raise click.BadParameter(f"{error}: `workbench models` lists them", param_hint="--name") from None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    where = device_name(torch.device(device))
    store = out.with_suffix(".json")
    command = " ".join(["workbench models --latency", *(f"--name {n}" for n in names), f"--repeats {repeats}"])
    for name in tqdm(names or default_students(), desc="students", unit="model"):
        cost = measure(name, repeats, warmup, device)
        data = record(store, where, [asdict(cost)], command)
        tqdm.write(f"{name}: image {cost.image_fused.median_ms:.1f} ms, text {cost.text_fused.median_ms:.1f} ms "
                   f"fused; max |Δ| {cost.max_difference:.1e}")
    out.write_text(render(data))
    click.echo(out.read_text())
    click.echo(f"wrote {out} and {store}")


# ---------------------------------------------------------------- report / ui
def print_report(ws: Workspace, file: Path, profile: str | None, write: bool, out: Path = Path("reports")) -> None:
    """Print FILE's table (and with ``write``, write it to OUT): ``report`` and ``study run`` end with it."""
    from workbench.config.study import load_study
    from workbench.report.build import study_report
    from workbench.study.trials import point_ids

    study = load_study(file)
    points = point_ids(study, file, profile or study.profile)
    text, paths = study_report(file, ws, profile, out if write else None, points)
    click.echo(text)
    for path in paths:
        click.echo(f"wrote {path}")


@click.command("report")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--all", "every", is_flag=True,
              help="Every study file in --studies (those without runs in this workspace are listed and skipped).")
@click.option("--studies", type=click.Path(file_okay=False, path_type=Path), default=Path("studies"),
              show_default=True, help="Where --all finds study files.")
@profile_option()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"), show_default=True,
              help="Each study's files go to OUT/<study>/.")
@click.pass_obj
def report(ws: Workspace, files: tuple[Path, ...], every: bool, studies: Path, profile: str | None, out: Path) -> None:
    """Print each study FILE's table (mean ± std over seeds, best bold, on-par cells marked), each row's
    verdict against `table.reference` and the runs' provenance; write OUT/<study>/<study>.{md,tex,html,csv}
    (Markdown, a booktabs LaTeX table, an HTML page, the numbers per seed with run ids) and a PNG plot of
    each metric against the swept axis."""
    if every:
        files = (*files, *sorted(studies.glob("*.yaml")))
    if not files:
        raise click.UsageError("name study files, or --all")
    missing = []
    for file in files:
        try:
            print_report(ws, file, profile, write=True, out=out)
        except LookupError as error:  # no runs of this study here: say so, render the others
            if not every:
                raise click.ClickException(str(error)) from error
            missing.append((file, error))
    for file, error in missing:
        click.echo(f"skipped {file}: {error}")


@click.command("ui")
@click.option("--port", default=5000, show_default=True)
@click.option("--mlruns", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Browse an exported store (`workbench export`, e.g. mlruns.example) instead of the workspace's.")
@click.pass_obj
def ui(ws: Workspace, port: int, mlruns: Path | None) -> None:
    """Start the MLflow UI on 127.0.0.1 against the workspace's store (Ctrl-C stops it)."""
    import sys

    from workbench.processes import serve_until_stopped, start_group
    from workbench.tracking.export import ui_command
    from workbench.tracking.mlflow_store import start_ui

    click.echo(f"MLflow UI on http://127.0.0.1:{port} (store {mlruns or ws.mlflow_uri})")
    serve_until_stopped(start_group(ui_command(mlruns, port, sys.executable)) if mlruns else start_ui(ws, port))


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 0.0.0.0 serves other machines (then name them in --allowed-hosts).")
@click.option("--port", default=5000, show_default=True)
@click.option("--backend-store-uri", "backend",
              help="Where runs are kept, e.g. postgresql://user@db-host/mlflow [default: the workspace's store].")
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path),
              help="Folder the server keeps artifacts in [default: the workspace's mlartifacts/].")
@click.option("--workers", default=2, show_default=True, help="The server's request-handling processes.")
@click.option("--allowed-hosts", help="Host headers the server answers (MLflow's --allowed-hosts), e.g. "
                                      "'tracking.lab.org,10.0.0.5:5000'.")
@click.pass_obj
def server(ws: Workspace, host: str, port: int, backend: str | None, artifacts: Path | None, workers: int,
           allowed_hosts: str | None) -> None:
    """Start an MLflow tracking server that every machine of a study logs to (Ctrl-C stops it).

    Point workers and reports at it with `--mlflow-uri http://HOST:PORT` (or WORKBENCH_MLFLOW_URI); runs
    go to --backend-store-uri (PostgreSQL for a group), artifacts through the server to --artifacts."""
    from workbench.processes import serve_until_stopped
    from workbench.tracking.mlflow_store import ensure_mlflow_store, start_server

    if backend is None:
        ws.ensure()
        ensure_mlflow_store(ws)
    click.echo(f"MLflow tracking server on http://{host}:{port} (runs in {backend or ws.mlflow_uri}); "
               f"workers: --mlflow-uri http://{host}:{port}")
    serve_until_stopped(start_server(ws, host, port, backend, artifacts, workers, allowed_hosts))


@click.command("export")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@profile_option()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A new folder: mlflow.db and artifacts/ (checkpoints left out).")
@click.pass_obj
def export(ws: Workspace, files: tuple[Path, ...], profile: str | None, out: Path) -> None:
    """Copy the MLflow runs of the study FILES (their parent and trial runs, metric histories, small
    artifacts) into a stand-alone store OUT that moves with a repository; browse it with
    `workbench ui --mlruns OUT`. Each copied run names its source in the tag workbench.source_run."""
    from workbench.config.study import load_study
    from workbench.tracking.export import export_experiments

    names = []
    for file in files:
        study = load_study(file)
        names.append(study.experiment(profile or study.profile))
    try:
        copied = export_experiments(ws.mlflow_uri, names, out)
    except (LookupError, FileExistsError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    for name, runs in copied.items():
        click.echo(f"{name}: {runs} runs")
    click.echo(f"wrote {out}; browse it with `workbench ui --mlruns {out}`")


COMMANDS = (train, reinforce_command, evaluate, models, report, ui, server, export)
"""The commands of this module, as ``workbench`` adds them."""
