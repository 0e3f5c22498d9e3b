"""Captioner fits honour data.holdout and class filters; other fits keep their keys; fits and captioning pin
their thread count."""

import json
import os
from types import SimpleNamespace

import pytest
import torch

import workbench.captioners.fit as captioner_fit
import workbench.data.build as data_build
import workbench.captioners.generate as generate
from workbench.captioners.decode import TopP
from workbench.captioners.fit import captioner_key, fit_captioner
from workbench.captioners.spec import load_registry
from workbench.captioners.train import training_set
from workbench.captioners.vocab import Vocabulary
from workbench.data.arrays import load_split_arrays
from workbench.evaluate.spec import DataRef
from workbench.threads import FIT_THREADS, resolve_threads


def test_shipped_captioners_keep_their_keys_and_holdout_gets_others(tmp_path, monkeypatch):
    """Pinned: the keys before filters and holdout existed, for the captioners whose data did not change."""
    monkeypatch.setattr(data_build, "dataset_fingerprints", lambda ws, names: {n: f"fp-{n}" for n in names})
    plain, held = load_registry(), load_registry(holdout=True)
    pinned = {"clipart-web": "e236c402de96bfc5", "emoji": "f495400929466af3"}
    assert {name: captioner_key(name, plain, None) for name in pinned} == pinned
    for name in plain.captioners:
        assert captioner_key(name, held, None) != captioner_key(name, plain, None)
        assert "holdout" not in plain.captioners[name].model_dump()


def test_training_sets_leave_the_validation_slice_and_filtered_classes_out(shapes_ws):
    train = load_split_arrays(shapes_ws.dataset_dir("shapes"), "train", 32, progress=False)
    slice_size = int(train.validation_mask().sum())
    vocab = Vocabulary.build(train.captions, 16)
    everything = training_set(shapes_ws, [DataRef(dataset="shapes")], 32, 0, vocab, None, False, False)
    held = training_set(shapes_ws, [DataRef(dataset="shapes")], 32, 0, vocab, None, True, False)
    circles = training_set(shapes_ws, [DataRef(dataset="shapes", where={"shape": ["circle"]})], 32, 0, vocab, None,
                           False, False)
    assert slice_size and len(everything) == len(train) and len(held) == len(train) - slice_size
    assert len(circles) == train.classes["shape"].count("circle")
    assert all("circle" in caption for caption in circles.captions)


def test_a_holdout_fit_trains_without_the_slice_under_its_own_key(shapes_ws, tiny_registry):
    held = tiny_registry.for_holdout(True)
    fitted = fit_captioner("shapes", shapes_ws, held, progress=False)
    train = load_split_arrays(shapes_ws.dataset_dir("shapes"), "train", 32, progress=False)
    assert fitted.info["fit"]["train_pairs"] == len(train) - int(train.validation_mask().sum())
    assert fitted.info["holdout"] is True
    assert fitted.key != captioner_key("shapes", tiny_registry, shapes_ws)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: every count is the same")
def test_fits_and_captioning_pin_their_threads_and_restore_the_callers(shapes_ws, monkeypatch):
    seen = []
    monkeypatch.setattr(captioner_fit, "_fit", lambda *args: seen.append(torch.get_num_threads()))

    def fake_build(captioner, images, uids, samples, decoding, seed, batch_size, partial, out, progress):
        seen.append(torch.get_num_threads())
        (out / "captions.jsonl").write_text("")
        (out / "summary.json").write_text(json.dumps({"images": 0}))

    monkeypatch.setattr(generate, "build_captions", fake_build)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        captioner_fit._build("c", "key", None, None, shapes_ws, shapes_ws.root, None, False)
        generate.caption_split(SimpleNamespace(name="c", key="k", image_size=32), shapes_ws, "shapes", "train", 1,
                               TopP(p=0.9), progress=False)
        assert seen == [resolve_threads(FIT_THREADS), resolve_threads(FIT_THREADS)]
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
