"""The ``workbench`` command. Every command body is one call into the library.

One module per command group (``study``, ``data``, ``fits``: teachers and captioners, ``runs``: the rest);
shared options in ``options``. Importing this package loads click and nothing heavy: torch, open_clip, MLflow
and Optuna load inside the commands that use them.
"""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli import data, fits, runs, study
from workbench.cli.options import EXIT_CONFIG, workspace_option
from workbench.config.errors import ConfigError
from workbench.workspace import Workspace


class _Group(click.Group):
    """Turns config errors into one line on stderr and exit status 2, before any work starts."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(EXIT_CONFIG)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@workspace_option
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
    from workbench.stages.cache import log_stages_to_stderr

    log_stages_to_stderr()
    ctx.obj = Workspace.resolve(workspace, mlflow_uri, optuna_storage)


for _command in (study.study, data.data, fits.teacher, fits.captioner, *runs.COMMANDS):
    main.add_command(_command)
