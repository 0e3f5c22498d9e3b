"""A trial's training on ``train.nproc`` processes: torchrun runs ``workbench train --resolved`` on the
trial's exact recipe; rank 0 commits the student to the stage cache, where the trial then finds it."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from workbench.config.recipe import Recipe
from workbench.processes import die_with_parent
from workbench.train.trainer import Reporter
from workbench.workspace import Workspace


def torchrun_command(recipe_file: Path, ws: Workspace, nproc: int) -> list[str]:
    """``--standalone``: a rendezvous on a free local port, so trials side by side never collide."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "workbench.cli", "--workspace", str(ws.root), "train", "--resolved", str(recipe_file)]


def train_on_processes(recipe: Recipe, ws: Workspace) -> None:
    """Train ``recipe`` on ``recipe.train.nproc`` local processes and wait; raise if any rank failed. The
    launcher dies with this process, and the ranks with the launcher, so a killed trial leaves nothing
    training (its checkpoint stays for the next try)."""
    with tempfile.TemporaryDirectory(prefix="workbench-trial-") as scratch:
        recipe_file = Path(scratch) / "recipe.yaml"
        recipe_file.write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
        run = subprocess.run(torchrun_command(recipe_file, ws, recipe.train.nproc), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    if run.returncode:
        raise RuntimeError(f"training on {recipe.train.nproc} processes failed (torchrun exit {run.returncode}):\n"
                           f"{run.stderr[-4000:]}")


def replay_history(reporter: Reporter | None, train_dir: Path) -> None:
    """Hand a finished training's logged history to the trial's reporter, as the training would have."""
    if reporter is None:
        return
    for line in (train_dir / "history.jsonl").read_text().splitlines():
        row = json.loads(line)
        reporter.log_metrics(row["metrics"], row["seen_samples"])
