"""Reinforcement on Ray (a local Ray of two workers here): the same shards, byte for byte, as the local
process pool with the same number of workers."""

import json

import pytest

from workbench.reinforce.stage import reinforce

from .conftest import make_ws, recipe


@pytest.mark.slow
def test_ray_tasks_write_the_shards_the_local_workers_write(reinforce_root, tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a Ray started for the call, on this machine
    local = reinforce(recipe(reinforce_root, workers=2), make_ws(tmp_path / "local", reinforce_root), progress=False)
    on_ray = reinforce(recipe(reinforce_root, workers=2, backend="ray"), make_ws(tmp_path / "ray", reinforce_root),
                       progress=False)
    assert on_ray.key == local.key  # where the workers ran is not part of what is stored
    shards = [json.loads((r.path / "manifest.json").read_text())["shards"] for r in (local, on_ray)]
    assert len(shards[0]) > 2 and shards[0] == shards[1]  # names, sample counts, bytes and sha256s
    import ray
    assert not ray.is_initialized()  # the Ray it started is gone
