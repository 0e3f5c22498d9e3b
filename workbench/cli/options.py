"""Options more than one command takes, and the exit status of a config error."""

from __future__ import annotations

from pathlib import Path

import click

EXIT_CONFIG = 2
"""Exit status of a config error (a bad file, key or value), as click's own usage errors."""


class ProfileChoice(click.Choice):
    """A recipe profile (``recipe_profiles()``): checked when the command line is parsed, exit status 2 and
    the choices listed if unknown. The recipe files are read when the choices are first needed, not at import."""

    def __init__(self) -> None:
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:
        from workbench.config.resolve import recipe_profiles

        return tuple(recipe_profiles())


def profile_option(**kwargs):
    """``--profile``, one of the recipe files' profiles; ``kwargs`` as ``click.option`` takes them."""
    return click.option("--profile", type=ProfileChoice(), **kwargs)


workspace_option = click.option(
    "--workspace", type=click.Path(file_okay=False, path_type=Path), envvar="WORKBENCH_HOME",
    help="Folder for data, caches, MLflow and Optuna stores [env WORKBENCH_HOME; default ./workspace].")
