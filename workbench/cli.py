"""The ``workbench`` command. Every command body is one call into the library."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workbench.config.errors import ConfigError
from workbench.workspace import Workspace

EXIT_CONFIG = 2


class ProfileChoice(click.Choice):
    """A recipe profile (``recipe_profiles()``): checked when the command line is parsed, exit status 2 and
    the choices listed if unknown. The recipe files are read when the choices are first needed, not at import."""

    def __init__(self) -> None:
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:
        from workbench.config.resolve import recipe_profiles

        return tuple(recipe_profiles())


class _Group(click.Group):
    """Turns config errors into one line on stderr and exit status 2, before any work starts."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(EXIT_CONFIG)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--workspace", type=click.Path(file_okay=False, path_type=Path), envvar="WORKBENCH_HOME",
              help="Folder for data, caches, MLflow and Optuna stores [env WORKBENCH_HOME; default ./workspace].")
@click.option("--mlflow-uri", envvar="WORKBENCH_MLFLOW_URI",
              help="MLflow tracking URI [env WORKBENCH_MLFLOW_URI; default sqlite in the workspace].")
@click.option("--optuna-storage", envvar="WORKBENCH_OPTUNA_STORAGE",
              help="Optuna storage, any SQLAlchemy URL [env WORKBENCH_OPTUNA_STORAGE; default sqlite in the workspace].")
@click.pass_context
def main(ctx: click.Context, workspace: Path | None, mlflow_uri: str | None, optuna_storage: str | None) -> None:
    """Ablation workbench for multi-modal reinforced training of CLIP models (MobileCLIP, MobileCLIP2).

    Write a study file, then: `workbench study run studies/baseline_clip.yaml`, browse with
    `workbench ui`, print the table with `workbench report studies/baseline_clip.yaml`.
    """
    from workbench.study.cache import log_stages_to_stderr

    log_stages_to_stderr()
    ctx.obj = Workspace.resolve(workspace, mlflow_uri, optuna_storage)


# ---------------------------------------------------------------- study
@main.group()
def study() -> None:
    """Validate, plan, run and inspect study files."""


@study.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--profile", type=ProfileChoice(), help="Also resolve at this profile.")
@click.pass_obj
def study_validate(ws: Workspace, files: tuple[Path, ...], profile: str | None) -> None:
    """Check study files (schema, dotted keys, trial count, names of datasets, teachers, captioners,
    suites and the objective metric, every grid point's recipe); exit 2 on the first error. Creates nothing."""
    from workbench.config.study import load_study, validate_points

    for path in files:
        study = load_study(path, ws)
        trials = validate_points(study, path, profile)
        click.echo(f"ok: {path} ({trials} grid trials" + (f", {study.search.trials} search trials)" if study.search
                                                          else ")"))


@study.command("plan")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--profile", type=ProfileChoice(), help="Scale of the recipe [default: the study's].")
@click.pass_obj
def study_plan(ws: Workspace, file: Path, profile: str | None) -> None:
    """List trials, stages to build, cache hits and the cost of running FILE."""
    from workbench.study.plan import make_plan

    click.echo(make_plan(file, ws, profile).render())


@study.command("run")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--profile", type=ProfileChoice(), help="Scale of the recipe [default: the study's].")
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
        _print_report(ws, file, profile, write=True)
    if summary.failed:
        sys.exit(1)


@study.command("status")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--profile", type=ProfileChoice())
@click.option("--all", "show_all", is_flag=True, help="Also list trials of points no longer in the study file.")
@click.pass_obj
def study_status(ws: Workspace, file: Path, profile: str | None, show_all: bool) -> None:
    """Show each trial's Optuna state, objective value and failure reason."""
    from workbench.study.status import render_status

    click.echo(render_status(file, ws, profile, show_all))


# ---------------------------------------------------------------- data
@main.group()
def data() -> None:
    """Build the offline datasets and import your own."""


@data.command("build")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Rebuild even if built.")
@click.option("--limit", type=int, help="Only the first N samples (quick checks).")
@click.pass_obj
def data_build(ws: Workspace, names: tuple[str, ...], force: bool, limit: int | None) -> None:
    """Build datasets NAMES (clipart-web, tuxpaint, emoji, glyphs, fashion-mnist, digits) as shards."""
    from workbench.data.build import SOURCES, build_dataset

    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise click.BadParameter(f"unknown dataset(s) {unknown}; known: {', '.join(SOURCES)}")
    for name in names:
        manifest = build_dataset(name, ws.ensure(), force=force, limit=limit)
        counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
        click.echo(f"{name}: {counts} (fingerprint {manifest['fingerprint']})")


@data.command("check")
@click.argument("names", nargs=-1)
@click.pass_obj
def data_check(ws: Workspace, names: tuple[str, ...]) -> None:
    """Hash the decoded pixels of every built split (or of NAMES) and look for held-out images in training.

    Exits 1 if an eval or validation image of a dataset is also one of its training images; near-duplicates
    (equal perceptual hashes) and overlaps across datasets are listed for the reader to judge.
    """
    from workbench.data.build import list_datasets
    from workbench.data.leaks import check_leaks, leaks, render_overlaps

    built = [row["name"] for row in list_datasets(ws) if row["built"]]
    missing = [n for n in names if n not in built]
    if missing:
        raise click.BadParameter(f"not built: {missing}; built: {', '.join(built) or 'none'}")
    overlaps = check_leaks({n: ws.dataset_dir(n) for n in names or built}, progress=True)
    click.echo(render_overlaps(overlaps))
    found = leaks(overlaps)
    if found:
        raise click.ClickException("leak: " + "; ".join(f"{o.pixels} of {o.held_out} in {o.train}" for o in found))
    click.echo("no held-out image of a dataset is one of its training images (decoded pixels compared)")


@data.command("list")
@click.pass_obj
def data_list(ws: Workspace) -> None:
    """Show known datasets and whether they are built."""
    from workbench.data.build import list_datasets

    for row in list_datasets(ws):
        click.echo(row if isinstance(row, str) else "  ".join(f"{k}={v}" for k, v in row.items()))


@data.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, help="Dataset name to create in the workspace.")
@click.option("--eval-fraction", default=0.1, show_default=True, help="Share of samples held out for eval.")
@click.option("--caption-column", default="caption", show_default=True)
@click.option("--path-column", default="path", show_default=True)
@click.option("--class-column", "class_columns", multiple=True, help="Columns holding class labels (repeatable).")
@click.pass_obj
def data_import(ws: Workspace, source: Path, name: str, eval_fraction: float, caption_column: str,
                path_column: str, class_columns: tuple[str, ...]) -> None:
    """Import your own data: a folder of images with .txt captions, a CSV/Parquet, or webdataset shards."""
    from workbench.data.importer import import_dataset

    manifest = import_dataset(source, name, ws.ensure(), eval_fraction=eval_fraction,
                              caption_column=caption_column, path_column=path_column,
                              class_columns=class_columns)
    counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
    click.echo(f"{name}: {counts} (fingerprint {manifest['fingerprint']}); train on it with data.train: [{name}]")


# ---------------------------------------------------------------- teachers
@main.group()
def teacher() -> None:
    """Fit and inspect the teacher zoo (workbench/teachers/zoo.yaml, or your own with --zoo)."""


_zoo_option = click.option("--zoo", "zoo_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                           help="Teacher zoo YAML [default: the built-in zoo].")


@teacher.command("list")
@_zoo_option
@click.pass_obj
def teacher_list(ws: Workspace, zoo_path: Path | None) -> None:
    """Show the zoo's teachers, their sources and whether each is fitted."""
    from workbench.teachers.fit import list_teachers

    click.echo(list_teachers(ws, zoo_path))


@teacher.command("fit")
@click.argument("names", nargs=-1, required=True)
@_zoo_option
@click.pass_obj
def teacher_fit(ws: Workspace, names: tuple[str, ...], zoo_path: Path | None) -> None:
    """Fit teachers NAMES (zoo names or openclip:MODEL/TAG_OR_PATH), score them, log them to MLflow.

    A fitted teacher is cached: fitting it again is a hit and costs nothing.
    """
    from workbench.teachers.fit import fit_teacher
    from workbench.teachers.zoo import load_zoo

    zoo = load_zoo(zoo_path)
    for name in names:
        fitted = fit_teacher(name, ws.ensure(), zoo)
        info = fitted.info
        click.echo(f"{name}: {'hit' if fitted.hit else 'fitted'} ({fitted.key}; fit took {info['seconds']:.0f} s); "
                   f"{fitted.summary()}; logit scale {info['logit_scale']:.1f}, "
                   f"{info['embed_dim']}-d at {info['image_size']} px")


# ---------------------------------------------------------------- captioners
@main.group()
def captioner() -> None:
    """Pretrain and fine-tune CoCa captioners (workbench/captioners/captioners.yaml, or your own with
    --captioners) and generate synthetic captions with them."""


_captioners_option = click.option("--captioners", "registry_path",
                                  type=click.Path(exists=True, dir_okay=False, path_type=Path),
                                  help="Captioner registry YAML [default: the built-in registry].")


def _registry(registry_path: Path | None):
    from workbench.captioners.spec import load_registry

    return load_registry(registry_path)


@captioner.command("list")
@_captioners_option
@click.pass_obj
def captioner_list(ws: Workspace, registry_path: Path | None) -> None:
    """Show the registry's captioners, their lineage and whether each is fitted."""
    from workbench.captioners.fit import list_captioners

    click.echo(list_captioners(ws, registry_path))


@captioner.command("fit")
@click.argument("names", nargs=-1, required=True)
@_captioners_option
@click.pass_obj
def captioner_fit(ws: Workspace, names: tuple[str, ...], registry_path: Path | None) -> None:
    """Pretrain captioners NAMES from scratch; a fitted captioner is cached and fitting it again is a hit."""
    from workbench.captioners.fit import fit_captioner

    registry = _registry(registry_path)
    for name in names:
        click.echo(fit_captioner(name, ws.ensure(), registry, expect="pretrain").describe())


@captioner.command("finetune")
@click.argument("names", nargs=-1, required=True)
@_captioners_option
@click.pass_obj
def captioner_finetune(ws: Workspace, names: tuple[str, ...], registry_path: Path | None) -> None:
    """Fine-tune captioners NAMES from their parents (pretraining a parent first if it is not fitted)."""
    from workbench.captioners.fit import fit_captioner

    registry = _registry(registry_path)
    for name in names:
        click.echo(fit_captioner(name, ws.ensure(), registry, expect="finetune").describe())


def _decoding(ctx: click.Context, param: click.Parameter, value: str):
    from workbench.captioners.decode import parse_decoding

    return parse_decoding(value)


@captioner.command("generate")
@click.argument("names", nargs=-1, required=True)
@click.option("--dataset", required=True, help="Dataset whose images are captioned (e.g. clipart-web).")
@click.option("--split", type=click.Choice(["train", "eval"]), default="eval", show_default=True)
@click.option("--samples", "-S", default=2, show_default=True, help="Captions per image and captioner.")
@click.option("--decoding", default="top_p", show_default=True, callback=_decoding, metavar="METHOD[:K=V,...]",
              help="top_p[:p=0.9,temperature=1.0] | top_k[:k=10,temperature=1.0] | beam[:beams=4,length_penalty=1.0]")
@click.option("--max-images", type=int, help="Caption a seeded subset of this many images [default: all].")
@click.option("--seed", default=0, show_default=True, help="Seeds the image subset and the sampling.")
@click.option("--batch-size", default=64, show_default=True, help="Images per generation batch.")
@click.option("--teacher", default="lite0-minilm", show_default=True,
              help="Fitted teacher for the image-text similarity figure; 'none' skips it.")
@_captioners_option
@click.pass_obj
def captioner_generate(ws: Workspace, names: tuple[str, ...], dataset: str, split: str, samples: int, decoding,
                       max_images: int | None, seed: int, batch_size: int, teacher: str,
                       registry_path: Path | None) -> None:
    """Generate S captions per image of DATASET/SPLIT with each captioner NAMES (cached per captioner)
    and log their quality report (diversity, style, samples, teacher similarity) to MLflow."""
    from workbench.captioners.pipeline import generate_captions

    click.echo(generate_captions(names, dataset, split, samples, decoding, ws.ensure(), _registry(registry_path),
                                 max_images, seed, batch_size, None if teacher == "none" else teacher).render())


# ---------------------------------------------------------------- train / eval
@main.command("train")
@click.option("--recipe", default="clip", show_default=True)
@click.option("--profile", type=ProfileChoice(), default="micro", show_default=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Dotted override, YAML value (repeatable).")
@click.pass_obj
def train(ws: Workspace, recipe: str, profile: str, sets: tuple[str, ...]) -> None:
    """Train (or reuse) one student outside any study and print its eval table."""
    from workbench.study.single import train_single

    click.echo(train_single(recipe, profile, sets, ws.ensure()))


@main.command("reinforce")
@click.option("--recipe", default="clip", show_default=True)
@click.option("--profile", type=ProfileChoice(), default="micro", show_default=True)
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


@main.command("eval")
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@click.option("--suite", help="Eval-suite YAML, or `validation` for the shipped tuning suite "
                               "[default: the built-in suite].")
@click.pass_obj
def evaluate(ws: Workspace, checkpoint: Path, suite: str | None) -> None:
    """Run the eval suite on a trained student (a model.pt from the stage cache)."""
    from workbench.evaluate.lineage import checkpoint_lineage, render
    from workbench.evaluate.spec import load_suite
    from workbench.evaluate.suite import run_suite
    from workbench.train.trainer import load_trained

    try:
        chosen = load_suite(suite)
    except FileNotFoundError as error:
        raise click.BadParameter(str(error), param_hint="--suite") from None
    result = run_suite(load_trained(checkpoint), ws, chosen, progress=True)
    click.echo(result.to_table() + "\n\n" + render(checkpoint_lineage(checkpoint), chosen, result.to_dict()))


@main.command("models")
def models() -> None:
    """List students: registered micro configs (with parameter counts) and open_clip names."""
    from workbench.config.recipe import ModelConfig
    from workbench.models.students import configured_image_size, count_parameters, create_student, list_students

    listing = list_students()
    for name in listing["micro"]:
        params = count_parameters(create_student(ModelConfig(name=name)))
        click.echo(f"{name:16} {configured_image_size(name):4d}px  {params['total'] / 1e6:6.2f}M params "
                   f"(image {params['image'] / 1e6:.2f}M, text {params['text'] / 1e6:.2f}M)")
    click.echo("open_clip: " + ", ".join(listing["open_clip"]))


# ---------------------------------------------------------------- report / ui
def _print_report(ws: Workspace, file: Path, profile: str | None, write: bool, out: Path = Path("reports")) -> None:
    from workbench.report.build import study_report

    text, paths = study_report(file, ws, profile, out if write else None)
    click.echo(text)
    for path in paths:
        click.echo(f"wrote {path}")


@main.command("report")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--profile", type=ProfileChoice())
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"), show_default=True)
@click.pass_obj
def report(ws: Workspace, file: Path, profile: str | None, out: Path) -> None:
    """Print FILE's table (mean ± std over seeds), each row's verdict against `table.reference` and the runs'
    provenance; write them to OUT as Markdown, and the numbers (per seed, with run ids) as CSV."""
    _print_report(ws, file, profile, write=True, out=out)


@main.command("ui")
@click.option("--port", default=5000, show_default=True)
@click.pass_obj
def ui(ws: Workspace, port: int) -> None:
    """Start the MLflow UI on 127.0.0.1 against the workspace's store (Ctrl-C stops it)."""
    from workbench.tracking.mlflow_store import start_ui

    click.echo(f"MLflow UI on http://127.0.0.1:{port} (store {ws.mlflow_uri})")
    process = start_ui(ws, port)
    try:
        process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
