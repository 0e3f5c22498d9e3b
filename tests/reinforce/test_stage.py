"""The reinforce stage on real (tiny) teachers and a captioner: what it stores replays exactly, it is
cached and logged, ranks and workers split it, corrupt inputs are named, and the storage report adds up."""

import json
import threading
import time

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from workbench.augment.policy import apply, decompress
from workbench.config.overrides import ConfigError
from workbench.data.arrays import fit_square
from workbench.data.shards import iter_split
from workbench.reinforce import stage as stage_module
from workbench.reinforce import work as work_module
from workbench.data.reinforced.dataset import ReinforcedDataset
from workbench.data.reinforced.shards import CorruptShardError
from workbench.reinforce.stage import EXPERIMENT, reinforce
from workbench.stages.cache import StageCache
from workbench.teachers.fit import load_teacher
from workbench.teachers.zoo import load_zoo
from workbench.workspace import Workspace

from .conftest import recipe


@pytest.fixture
def recorded(monkeypatch):
    """Every batch of pixels a teacher encodes during reinforcement, by teacher name."""
    seen: dict[str, list[torch.Tensor]] = {}
    real = work_module.load_teacher

    def recording(name, ws, zoo=None):
        teacher = real(name, ws, zoo)
        encode = teacher.encode_images

        def spy(pixels):
            seen.setdefault(name, []).append(pixels.clone())
            return encode(pixels)

        teacher.encode_images = spy
        return teacher

    monkeypatch.setattr(work_module, "load_teacher", recording)
    return seen


def test_stored_augmentations_replay_to_the_teachers_pixels_and_embeddings(reinforce_root, reinforce_ws, recorded):
    result = reinforce(recipe(reinforce_root, dtype="bf16"), reinforce_ws, progress=False)
    data = result.dataset
    manifest = result.manifest
    assert [t["name"] for t in manifest["teachers"]] == ["lite0-tiny", "micro-openclip"]
    dims = data.teacher_dims
    assert dims[0] == 32 and dims[1] != 32  # two blocks of different widths
    assert len(data.shards) == len(list((reinforce_ws.dataset_dir("shards")).glob("train-*.tar"))) > 3

    # uint8 sources in the stored order, at the frame the boxes are in
    sources = {s.uid: np.asarray(fit_square(s.image, data.source_size))
               for s in iter_split(reinforce_ws.dataset_dir("shards"), "train")}
    samples = list(data.samples())
    assert len(samples) == len(sources) == manifest["samples"]
    batch = torch.from_numpy(np.stack([sources[s.uid] for s in samples[:8]]))  # the first shard's first batch
    zoo = load_zoo(reinforce_root / "zoo.yaml")
    teachers = {name: load_teacher(name, reinforce_ws, zoo) for name in ("lite0-tiny", "micro-openclip")}
    for k in range(manifest["augmentations"]):
        params = decompress([s.param_aug[k] for s in samples[:8]], data.policy)
        offset = 0
        for (name, teacher), dim in zip(teachers.items(), dims):
            replayed = apply(batch, params, data.policy, teacher.image_size, data.source_size, data.reference_size)
            assert torch.equal(replayed, recorded[name][k]), f"augmentation {k} of {name} does not replay exactly"
            stored = torch.from_numpy(np.stack([s.image_emb[k, offset:offset + dim] for s in samples[:8]]))
            cosine = torch.nn.functional.cosine_similarity(teacher.encode_images(replayed), stored)
            assert cosine.min() >= 0.999, cosine
            offset += dim

    first = samples[0]
    assert first.image_emb.shape == (3, sum(dims)) and first.text_emb.shape == (1, sum(dims))
    captions = first.syn_text["syn_text_shards-cap"]
    assert 1 <= len(captions) <= 2 and first.syn_emb["syn_text_shards-cap"].shape == (len(captions), sum(dims))
    truth = next(s.caption for s in iter_split(reinforce_ws.dataset_dir("shards"), "train") if s.uid == first.uid)
    text = torch.cat([teachers[n].encode_texts([truth]) for n in teachers], dim=1)
    assert torch.nn.functional.cosine_similarity(text, torch.from_numpy(first.text_emb)).item() >= 0.999
    data.verify()


def test_cached_logged_and_storage_reported(reinforce_root, reinforce_ws):
    first = reinforce(recipe(reinforce_root), reinforce_ws, progress=False)
    again = reinforce(recipe(reinforce_root, workers=3, on_corrupt="skip"), reinforce_ws, progress=False)
    assert not first.hit and again.hit and again.key == first.key
    other = reinforce(recipe(reinforce_root, augmentations=2), reinforce_ws, progress=False)
    assert other.key != first.key

    storage = first.manifest["storage"]
    base = storage["baseline_per_sample"]
    width = sum(t["dim"] for t in first.manifest["teachers"])
    samples = list(first.dataset.samples())
    rows = sum(3 + 1 + len(s.syn_text["syn_text_shards-cap"]) for s in samples) / len(samples)
    assert base["embeddings"] == pytest.approx(rows * width * 2)
    assert base["captions"] > 0 and 0 < base["augmentation_params"] < 3 * 4 * 4  # packed: under 4 B a number
    on_disk = sum(p.stat().st_size for p in first.dataset.shards) / len(samples)
    assert storage["per_sample"]["total"] == pytest.approx(on_disk)
    assert "storage per sample" in first.render()

    client = MlflowClient(reinforce_ws.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    metrics = next(r for r in runs if r.data.tags["workbench.stage.reinforce"] == first.key).data.metrics
    assert metrics["storage/ratio_to_baseline"] == pytest.approx(storage["ratio_to_baseline"])
    assert metrics["samples"] == len(samples)


def test_a_cached_reinforcement_new_to_the_mlflow_store_is_logged_not_rebuilt(reinforce_root, reinforce_ws,
                                                                              tmp_path, monkeypatch):
    built = reinforce(recipe(reinforce_root), reinforce_ws, progress=False)
    fresh_store = Workspace.resolve(reinforce_ws.root, mlflow_uri=f"sqlite:///{tmp_path / 'fresh.db'}")

    def rebuild(*args, **kwargs):
        raise AssertionError("a cached shard was reinforced again")

    monkeypatch.setattr(work_module, "reinforce_shard", rebuild)
    logged = reinforce(recipe(reinforce_root), fresh_store, progress=False)
    assert logged.hit and logged.key == built.key and logged.run_id
    assert not StageCache(reinforce_ws.cache_dir).partial_dir("reinforce", built.key).exists()
    run = MlflowClient(fresh_store.mlflow_uri).get_run(logged.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["workbench.cache_hit"] == "True"
    assert run.data.metrics["samples"] == built.manifest["samples"]
    assert reinforce(recipe(reinforce_root), fresh_store, progress=False).run_id is None  # found, not logged twice


def test_ranks_and_workers_store_what_one_process_stores(reinforce_root, reinforce_ws, tmp_path, monkeypatch):
    from .conftest import make_ws

    single = reinforce(recipe(reinforce_root), reinforce_ws, progress=False)
    split_ws = make_ws(tmp_path / "split", reinforce_root)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(stage_module, "WAIT_SECONDS", 0.05)
    rank1 = threading.Thread(target=reinforce, args=(recipe(reinforce_root, workers=2), split_ws, False))
    rank1.start()  # rank 1 writes its shards, then waits for rank 0's commit
    partial = split_ws.cache_dir / "reinforce" / f"{single.key}.partial"
    names = [s.name for s in single.dataset.shards]
    deadline = time.time() + 120
    while time.time() < deadline and len(list(partial.glob("*.tar.json"))) < len(names[1::2]):
        time.sleep(0.05)
    assert sorted(p.name for p in partial.glob("*.tar")) == names[1::2]  # rank 1: every other shard only
    assert rank1.is_alive()
    monkeypatch.setenv("RANK", "0")
    merged = reinforce(recipe(reinforce_root), split_ws, progress=False)
    rank1.join(timeout=60)
    assert not rank1.is_alive()
    assert merged.key == single.key
    # augmentations and captions are identical; embeddings agree to float noise (a worker with one thread
    # sums in another order than a process with two)
    for ours, theirs in zip(merged.dataset.samples(), single.dataset.samples(), strict=True):
        assert ours.uid == theirs.uid and ours.param_aug == theirs.param_aug and ours.syn_text == theirs.syn_text
        assert np.allclose(ours.image_emb, theirs.image_emb, atol=2e-3)
        assert np.allclose(ours.text_emb, theirs.text_emb, atol=2e-3)


def test_a_corrupt_input_shard_fails_by_name_or_is_skipped_and_counted(reinforce_root, tmp_path):
    import shutil

    from workbench.workspace import Workspace

    ws = Workspace.resolve(tmp_path / "ws").ensure()
    shutil.copytree(reinforce_root / "ws" / "data" / "shards", ws.dataset_dir("shards"))
    victim = sorted(ws.dataset_dir("shards").glob("train-*.tar"))[2]
    victim.write_bytes(victim.read_bytes()[:700])  # truncated mid-member
    with pytest.raises(CorruptShardError, match=victim.name):
        reinforce(recipe(reinforce_root, captioners=[]), ws, progress=False)
    result = reinforce(recipe(reinforce_root, captioners=[], on_corrupt="skip"), ws, progress=False)
    assert [s["source"] for s in result.manifest["skipped"]] == [victim.name]
    assert "unreadable" in result.manifest["skipped"][0]["reason"]
    assert len(result.dataset.shards) == len(list(ws.dataset_dir("shards").glob("train-*.tar"))) - 1
    assert result.dataset.manifest["samples"] == sum(1 for _ in result.dataset.samples())


def test_no_teachers_is_a_config_error(reinforce_root, reinforce_ws):
    with pytest.raises(ConfigError, match="reinforce.teachers"):
        reinforce(recipe(reinforce_root, teachers=[]), reinforce_ws, progress=False)


def test_reader_opens_only_committed_datasets(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        ReinforcedDataset.open(tmp_path)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"shards": [{"name": "x.tar", "sha256": "0" * 64}], "policy": {},
                                    "teachers": [{"dim": 4}], "source_size": 8, "reference_size": 8,
                                    "dtype": "fp16"}))
    (tmp_path / "x.tar").write_bytes(b"not a tar")
    data = ReinforcedDataset.open(tmp_path)
    with pytest.raises(CorruptShardError, match="checksum"):
        data.verify()
    with pytest.raises(CorruptShardError, match="x.tar"):
        list(data.samples())


def test_kill_9_mid_run_keeps_finished_shards_and_resumes_to_the_uninterrupted_result(reinforce_root, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import make_ws

    settings = recipe(reinforce_root, captioners=[]).reinforce
    killed_ws = make_ws(tmp_path / "killed", reinforce_root)
    sets = ["data.train=[shards]", f"reinforce.teachers={settings.teachers}", f"reinforce.zoo={settings.zoo}",
            "reinforce.augmentations=3", "reinforce.batch_size=8"]
    command = [sys.executable, "-m", "workbench", "--workspace", str(killed_ws.root), "reinforce"]
    command += [arg for item in sets for arg in ("--set", item)]
    # the same thread count as this process: float sums (and so the stored bytes) depend on it
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    partial_root = killed_ws.cache_dir / "reinforce"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if any(partial_root.glob("*.partial/*.tar.json")):
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    assert process.wait() == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    partial = next(partial_root.glob("*.partial"))
    finished = sorted(p.name[:-len(".json")] for p in partial.glob("*.tar.json"))
    total = len(list(killed_ws.dataset_dir("shards").glob("train-*.tar")))
    assert 0 < len(finished) < total
    assert not list(partial_root.glob("[!.]*[!l]")), "nothing was committed"  # only <key>.partial and the lock
    kept = {name: (partial / name).read_bytes() for name in finished}

    resumed = reinforce(recipe(reinforce_root, captioners=[]), killed_ws, progress=False)
    whole = reinforce(recipe(reinforce_root, captioners=[]), make_ws(tmp_path / "whole", reinforce_root),
                      progress=False)
    assert resumed.key == whole.key and not resumed.hit
    assert [s["sha256"] for s in resumed.manifest["shards"]] == [s["sha256"] for s in whole.manifest["shards"]]
    for name, data in kept.items():  # finished shards were kept, not rewritten
        assert (resumed.path / name).read_bytes() == data
    assert not list(resumed.path.glob(".*tmp*"))  # a half-written shard never reaches the dataset
