import json
import math

import open_clip
import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from workbench.data.shards import write_dataset
from workbench.evaluate.data import DatasetMissingError
from workbench.evaluate.spec import Suite
from workbench.evaluate.suite import run_suite
from workbench.evaluate.data import prepare_task
from workbench.models.encoder import OpenClipEncoder

from .fakes import CLASSES, FONTS, N_CAPTIONS, PerfectEncoder, RandomEncoder, toy_samples, toy_suite


def test_perfect_encoder_scores_one_everywhere(ws):
    result = run_suite(PerfectEncoder(), ws, toy_suite())
    for key, value in result.metrics.items():
        if key != "avg":
            assert value == pytest.approx(1.0), key
    assert result.metrics["avg"] == pytest.approx((1.0 + 1.0) / 2)


def test_chance_levels_sizes_and_headline_stderr(ws):
    result = run_suite(RandomEncoder(), ws, toy_suite())
    zs, ret = result.tasks
    assert (zs.n_items, zs.n_classes) == (N_CAPTIONS * FONTS, len(CLASSES))
    assert result.chance["zs_toy/balanced_acc"] == pytest.approx(1 / 3)
    assert result.chance["zs_toy/top1"] == pytest.approx(0.6)  # majority class
    assert ret.n_items == N_CAPTIONS  # one image per caption
    for k in (1, 5, 10):
        assert result.chance[f"ret_toy/r{k}"] == pytest.approx(k / N_CAPTIONS)
    se = (result.stderr["zs_toy/balanced_acc"] ** 2 + result.stderr["ret_toy/r5"] ** 2) ** 0.5 / 2
    assert result.stderr["avg"] == pytest.approx(se)
    assert result.chance["avg"] == pytest.approx((1 / 3 + 5 / N_CAPTIONS) / 2)
    assert result.headline["avg"] == ["zs_toy/balanced_acc", "ret_toy/r5"]


@pytest.mark.parametrize("seed", [0, 1])
def test_random_encoder_is_near_chance(ws, seed):
    result = run_suite(RandomEncoder(seed), ws, toy_suite())
    for key in ("zs_toy/balanced_acc", "ret_toy/r5", "ret_toy/r10", "zeroshot", "retrieval", "avg"):
        assert abs(result.metrics[key] - result.chance[key]) < 4 * max(result.stderr[key], 0.01), key


def test_dedupe_keeps_one_image_per_caption(ws):
    suite = toy_suite()
    dedup = prepare_task(suite.task("ret_toy"), ws.dataset_dir("toy"), 8, seed=0)
    assert len(dedup.captions) == len(set(dedup.captions)) == N_CAPTIONS
    assert {f"item{i}" for i in range(N_CAPTIONS)} == {dedup.arrays.uids[i].split("-")[0] for i in dedup.indices}
    fonts = {dedup.arrays.uids[i].split("-")[1] for i in dedup.indices}
    assert len(fonts) == FONTS  # the seeded pick is not always the first font
    keep_all = suite.task("ret_toy").model_copy(update={"dedupe_captions": False, "max_items": 50})
    assert len(prepare_task(keep_all, ws.dataset_dir("toy"), 8, seed=0).indices) == 50


def test_without_dedupe_duplicate_captions_are_ties_not_hits(ws):
    raw = toy_suite().model_dump()
    raw["tasks"][1]["dedupe_captions"] = False
    result = run_suite(PerfectEncoder(), ws, Suite.model_validate(raw))
    assert result.metrics["ret_toy/i2t_r1"] == pytest.approx(1 / FONTS)  # the caption appears FONTS times
    assert result.metrics["ret_toy/t2i_r1"] == pytest.approx(1 / FONTS)
    assert result.metrics["ret_toy/r5"] == pytest.approx(1.0)


def test_zeroshot_class_filters(ws):
    raw = toy_suite().model_dump()
    raw["tasks"][0].update(min_per_class=20, max_per_class=30)  # owl has 12 captions x 2 fonts = 24 images
    data = prepare_task(Suite.model_validate(raw).tasks[0], ws.dataset_dir("toy"), 8, seed=0)
    assert data.classes == CLASSES and sorted(torch.bincount(torch.from_numpy(data.labels)).tolist()) == [24, 30, 30]
    raw["tasks"][0].update(min_per_class=25, max_per_class=None)
    data = prepare_task(Suite.model_validate(raw).tasks[0], ws.dataset_dir("toy"), 8, seed=0)
    assert data.classes == ["cat", "dog"] and len(data.indices) == 2 * N_CAPTIONS * 0.9
    raw["tasks"][0].update(min_per_class=1, dedupe_captions=True)  # one render per caption, as for glyphs
    data = prepare_task(Suite.model_validate(raw).tasks[0], ws.dataset_dir("toy"), 8, seed=0)
    assert torch.bincount(torch.from_numpy(data.labels)).tolist() == [72, 36, 12]
    retrieval = prepare_task(Suite.model_validate(raw).tasks[1], ws.dataset_dir("toy"), 8, seed=0)
    assert (data.indices == retrieval.indices).all()  # same seeded picks: images are embedded once


def test_missing_dataset_names_the_build_command(ws):
    raw = toy_suite().model_dump()
    raw["tasks"].append({"name": "ret_nope", "kind": "retrieval", "dataset": "nope", "domain": "transfer"})
    raw["headline"]["retrieval"]["tasks"].append("ret_nope")
    suite = Suite.model_validate(raw)
    with pytest.raises(DatasetMissingError, match="workbench data build nope"):
        run_suite(PerfectEncoder(), ws, suite)
    result = run_suite(PerfectEncoder(), ws, suite, skip_missing=True)
    assert "ret_nope" in result.skipped and "ret_nope/r1" not in result.metrics
    assert result.headline["retrieval"] == ["ret_toy/r1"]
    assert "skipped ret_nope" in result.to_table()


def test_data_is_cached_and_a_rebuilt_dataset_is_reloaded(ws, tmp_path):
    task = toy_suite().task("ret_toy")
    first = prepare_task(task, ws.dataset_dir("toy"), 8, seed=0)
    assert prepare_task(task, ws.dataset_dir("toy"), 8, seed=0) is first
    other = tmp_path / "toy"
    write_dataset(other, "toy", toy_samples()[:40], eval_fraction=0.5, eval_only=True)
    assert len(prepare_task(task, other, 8, seed=0).indices) == 20
    write_dataset(other, "toy", toy_samples()[:60], eval_fraction=0.5, eval_only=True)
    assert len(prepare_task(task, other, 8, seed=0).indices) == 30


def test_report_json_and_table(ws):
    result = run_suite(RandomEncoder(), ws, toy_suite())
    data = json.loads(result.to_json())
    assert set(data["metrics"]) == set(data["chance"]) == set(data["stderr"])
    assert {"zeroshot", "retrieval", "avg", "zs_toy/balanced_acc", "ret_toy/i2t_r10"} <= set(data["metrics"])
    table = result.to_table()
    assert "balanced_acc*" in table and "r5*" in table and "~chance" in table and "in-domain" in table


def _tiny_open_clip() -> OpenClipEncoder:
    torch.manual_seed(0)
    model = CLIP(16, CLIPVisionCfg(image_size=16, patch_size=8, width=32, layers=1, head_width=16),
                 CLIPTextCfg(context_length=12, vocab_size=49408, width=32, heads=2, layers=1))
    model.train()
    tokenizer = open_clip.SimpleTokenizer(context_length=12)
    return OpenClipEncoder(model, tokenizer, 16, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)


def test_tiny_open_clip_end_to_end(ws):
    encoder = _tiny_open_clip()
    result = run_suite(encoder, ws, toy_suite(), batch_size=64, chunk_size=50)
    assert encoder.model.training  # eval mode only while the suite ran
    assert all(math.isfinite(v) and 0 <= v <= 1 for v in result.metrics.values())
    assert result.tasks[1].n_items == N_CAPTIONS and result.seconds > 0
