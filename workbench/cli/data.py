"""``workbench data``: build the offline datasets, import your own, check them for leaks."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.workspace import Workspace


@click.group()
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
