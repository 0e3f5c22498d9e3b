"""Data-parallel training from a reinforced dataset: 2 torchrun processes (gloo, CPU) train the model
one process trains at the same global batch, and a killed 2-process run resumes from its checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from workbench.reinforce.stage import reinforce
from workbench.study.pipeline import distillation
from workbench.train.stage import run_train_stage, train_key

from .conftest import SHARDS_SUITE, make_ws, recipe

STEPS, EVERY = 60, 20


def _sets(root) -> list[str]:
    config = recipe(root, captions=2).reinforce
    sets = ["data.train=[shards]", f"eval.suite={SHARDS_SUITE}", f"train.steps={STEPS}",
            f"train.checkpoint_every={EVERY}", f"train.eval_every={STEPS}", "train.batch_size=32",
            "train.warmup_steps=5", "train.threads=1", "data.max_train_samples=null",
            f"reinforce.teachers={config.teachers}", f"reinforce.zoo={config.zoo}",
            f"reinforce.captioners={config.captioners}", f"reinforce.registry={config.registry}",
            "reinforce.captions=2", "reinforce.augmentations=3", "reinforce.batch_size=8", "distill.lam=0.5"]
    return [arg for item in sets for arg in ("--set", item)]


def _torchrun(ws, root, port: int = 29517) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               "-m", "workbench", "--workspace", str(ws.root), "train", "--profile", "smoke", *_sets(root)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.slow
def test_two_processes_match_one_and_resume_after_kill_9(reinforce_root, tmp_path):
    from workbench.config.resolve import resolve_recipe
    from workbench.study.single import parse_sets

    args = _sets(reinforce_root)
    resolved = resolve_recipe("clip", "smoke", [("--set", parse_sets(tuple(args[1::2])))])
    single_ws, ddp_ws = make_ws(tmp_path / "one", reinforce_root), make_ws(tmp_path / "two", reinforce_root)
    for ws in (single_ws, ddp_ws):  # the reinforced dataset (and its teachers) exist before training starts
        reinforce(resolved, ws, progress=False)
    distilled, _ = distillation(resolved, single_ws, progress=False)
    single = run_train_stage(resolved, single_ws, None, None, False, distilled)

    key = train_key(resolved, ddp_ws, distilled.key)
    partial = ddp_ws.cache_dir / "train" / f"{key}.partial"
    first = _torchrun(ddp_ws, reinforce_root)
    deadline = time.time() + 240
    while time.time() < deadline and first.poll() is None and not (partial / "checkpoint.pt").exists():
        time.sleep(0.01)
    for pid in _children(first.pid) + [first.pid]:  # torchrun starts each worker in a session of its own
        os.kill(pid, signal.SIGKILL)
    first.wait()
    assert (partial / "checkpoint.pt").exists(), first.stderr.read().decode()[-3000:]
    step = torch.load(partial / "checkpoint.pt", weights_only=False)["step"]
    assert 0 < step < STEPS and not (ddp_ws.cache_dir / "train" / key).exists()

    second = _torchrun(ddp_ws, reinforce_root)
    assert second.wait(timeout=300) == 0, second.stderr.read().decode()[-3000:]
    trained = ddp_ws.cache_dir / "train" / key
    assert json.loads((trained / "summary.json").read_text())["resumed_from_step"] >= step
    ours = torch.load(trained / "model.pt", weights_only=False)["model"]
    theirs = torch.load(single.path / "model.pt", weights_only=False)["model"]
    for name, value in theirs.items():
        assert torch.allclose(ours[name], value, rtol=1e-3, atol=2e-4), name


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="nccl data parallelism needs two GPUs")
def test_two_gpu_processes_train_over_nccl(reinforce_root, tmp_path):
    from workbench.config.resolve import resolve_recipe
    from workbench.study.single import parse_sets

    ws = make_ws(tmp_path / "nccl", reinforce_root)
    args = _sets(reinforce_root)
    reinforce(resolve_recipe("clip", "smoke", [("--set", parse_sets(tuple(args[1::2])))]), ws, progress=False)
    run = _torchrun(ws, reinforce_root, port=29518)  # CUDA present: the process group is nccl
    _, errors = run.communicate(timeout=600)
    assert run.returncode == 0, errors.decode()[-2000:]
    (model,) = (ws.cache_dir / "train").glob("*/model.pt")
    assert torch.load(model, map_location="cpu", weights_only=False)["model"]
