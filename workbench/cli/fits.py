"""``workbench teacher`` and ``workbench captioner``: named models fitted from a spec file (the teacher zoo,
the captioner registry), each group's ``list`` and ``fit`` made by ``fit_group``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from workbench.workspace import Workspace


def fit_group(name: str, help: str, *, flag: str, file_help: str, list_help: str, fit_help: str,
              listing: Callable[[Workspace, Path | None], str], load: Callable[[Path | None], Any],
              fit_one: Callable[[str, Workspace, Any], str]) -> tuple[click.Group, Callable]:
    """A command group ``name`` with ``list`` and ``fit NAMES...``, and the option ``flag`` naming its spec
    file (for the group's other commands).

    ``list`` prints ``listing(ws, file)``; ``fit`` loads the spec file with ``load(file)`` (so a bad file
    fails before any work) and prints ``fit_one(name, ws, spec)`` for each name in turn.
    """
    group = click.Group(name, help=help)
    spec_option = click.option(flag, "spec_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                               help=file_help)

    @group.command("list", help=list_help)
    @spec_option
    @click.pass_obj
    def list_command(ws: Workspace, spec_path: Path | None) -> None:
        click.echo(listing(ws, spec_path))

    @group.command("fit", help=fit_help)
    @click.argument("names", nargs=-1, required=True)
    @spec_option
    @click.pass_obj
    def fit_command(ws: Workspace, names: tuple[str, ...], spec_path: Path | None) -> None:
        spec = load(spec_path)
        for one in names:
            click.echo(fit_one(one, ws.ensure(), spec))

    return group, spec_option


# ---------------------------------------------------------------- teachers
def _list_teachers(ws: Workspace, zoo_path: Path | None) -> str:
    from workbench.teachers.fit import list_teachers

    return list_teachers(ws, zoo_path)


def _load_zoo(zoo_path: Path | None):
    from workbench.teachers.zoo import load_zoo

    return load_zoo(zoo_path)


def _fit_teacher(name: str, ws: Workspace, zoo) -> str:
    from workbench.teachers.fit import fit_teacher

    fitted = fit_teacher(name, ws, zoo)
    info = fitted.info
    return (f"{name}: {'hit' if fitted.hit else 'fitted'} ({fitted.key}; fit took {info['seconds']:.0f} s); "
            f"{fitted.summary()}; logit scale {info['logit_scale']:.1f}, "
            f"{info['embed_dim']}-d at {info['image_size']} px")


teacher, _ = fit_group(
    "teacher", "Fit and inspect the teacher zoo (workbench/teachers/zoo.yaml, or your own with --zoo).",
    flag="--zoo", file_help="Teacher zoo YAML [default: the built-in zoo].",
    list_help="Show the zoo's teachers, their sources and whether each is fitted.",
    fit_help="""Fit teachers NAMES (zoo names or openclip:MODEL/TAG_OR_PATH), score them, log them to MLflow.

    A fitted teacher is cached: fitting it again is a hit and costs nothing.
    """,
    listing=_list_teachers, load=_load_zoo, fit_one=_fit_teacher)


# ---------------------------------------------------------------- captioners
def _list_captioners(ws: Workspace, registry_path: Path | None) -> str:
    from workbench.captioners.fit import list_captioners

    return list_captioners(ws, registry_path)


def _registry(registry_path: Path | None):
    from workbench.captioners.spec import load_registry

    return load_registry(registry_path)


def _fit_captioner(expect: str) -> Callable[[str, Workspace, Any], str]:
    def fit_one(name: str, ws: Workspace, registry) -> str:
        from workbench.captioners.fit import fit_captioner

        return fit_captioner(name, ws, registry, expect=expect).describe()

    return fit_one


captioner, _captioners_option = fit_group(
    "captioner", """Pretrain and fine-tune CoCa captioners (workbench/captioners/captioners.yaml, or your own with
    --captioners) and generate synthetic captions with them.""",
    flag="--captioners", file_help="Captioner registry YAML [default: the built-in registry].",
    list_help="Show the registry's captioners, their lineage and whether each is fitted.",
    fit_help="Pretrain captioners NAMES from scratch; a fitted captioner is cached and fitting it again is a hit.",
    listing=_list_captioners, load=_registry, fit_one=_fit_captioner("pretrain"))


@captioner.command("finetune")
@click.argument("names", nargs=-1, required=True)
@_captioners_option
@click.pass_obj
def captioner_finetune(ws: Workspace, names: tuple[str, ...], spec_path: Path | None) -> None:
    """Fine-tune captioners NAMES from their parents (pretraining a parent first if it is not fitted)."""
    registry = _registry(spec_path)
    fit_one = _fit_captioner("finetune")
    for name in names:
        click.echo(fit_one(name, ws.ensure(), registry))


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
                       spec_path: Path | None) -> None:
    """Generate S captions per image of DATASET/SPLIT with each captioner NAMES (cached per captioner)
    and log their quality report (diversity, style, samples, teacher similarity) to MLflow."""
    from workbench.captioners.pipeline import generate_captions

    click.echo(generate_captions(names, dataset, split, samples, decoding, ws.ensure(), _registry(spec_path),
                                 max_images, seed, batch_size, None if teacher == "none" else teacher).render())
