"""The captions stage: S cleaned captions per image with every decoding, resumable, cached, reported."""

import pytest
import torch
from mlflow import MlflowClient

from workbench.captioners import generate
from workbench.captioners.decode import Beam, TopK, TopP, parse_decoding
from workbench.captioners.fit import EXPERIMENT, load_captioner
from workbench.captioners.generate import caption_split, clean
from workbench.captioners.pipeline import generate_captions
from workbench.config.overrides import ConfigError

from .conftest import make_workspace

S = 3


@pytest.mark.parametrize("decoding", [TopP(p=0.9), TopK(k=3), Beam(beams=4)], ids=lambda d: d.method)
def test_every_decoding_gives_s_cleaned_captions_per_image(fitted, decoding):
    ws, registry = fitted
    captioner = load_captioner("shapes", ws, registry)
    result = caption_split(captioner, ws, "shapes", "eval", S, decoding, max_images=20, progress=False)
    captions = result.captions()
    assert len(captions) == 20 and result.summary["images"] == 20
    for uid, kept in captions.items():
        assert 1 <= len(kept) <= S and len(set(kept)) == len(kept)
        assert all(c and c == " ".join(c.split()) and "<" not in c for c in kept)
    summary = result.summary
    assert summary["captions"] + summary["duplicates"] + summary["empty"] == 20 * S
    if isinstance(decoding, Beam):  # distinct beams are distinct captions
        assert summary["captions"] == 20 * S
    again = caption_split(captioner, ws, "shapes", "eval", S, decoding, max_images=20, progress=False)
    assert again.hit and again.key == result.key and again.captions() == captions


def test_sampling_is_seeded_and_the_seed_matters(fitted):
    ws, registry = fitted
    captioner = load_captioner("shapes", ws, registry)
    pixels = torch.rand(6, 3, captioner.image_size, captioner.image_size)
    decoding = TopP(p=1.0, temperature=3.0)
    first = captioner.caption(pixels, decoding, 4, torch.Generator().manual_seed(1))
    assert first == captioner.caption(pixels, decoding, 4, torch.Generator().manual_seed(1))
    assert first != captioner.caption(pixels, decoding, 4, torch.Generator().manual_seed(2))


def test_clean_drops_repeats_and_empty_captions_and_counts_them():
    assert clean(["a red  circle", "", "a red circle", "a blue square "]) == (["a red circle", "a blue square"], 1, 1)


def test_generation_resumes_at_its_last_chunk(fitted, shapes_root, tmp_path, monkeypatch):
    ws, registry = fitted
    captioner = load_captioner("shapes", ws, registry)
    monkeypatch.setattr(generate, "CHUNK", 8)
    real, calls = captioner.caption, []

    def caption(pixels, decoding, samples, generator, fail=False):
        if fail and len(calls) == 2:
            raise KeyboardInterrupt  # killed during the third chunk
        calls.append(len(pixels))
        return real(pixels, decoding, samples, generator)

    fresh = make_workspace(tmp_path / "resumed", shapes_root)
    monkeypatch.setattr(captioner, "caption", lambda *a: caption(*a, fail=True))
    with pytest.raises(KeyboardInterrupt):
        caption_split(captioner, fresh, "shapes", "eval", 2, TopP(), batch_size=8, progress=False)
    assert calls == [8, 8]
    monkeypatch.setattr(captioner, "caption", lambda *a: caption(*a))
    resumed = caption_split(captioner, fresh, "shapes", "eval", 2, TopP(), batch_size=8, progress=False)
    images = resumed.summary["images"]
    assert sum(calls) == images and calls[:2] == [8, 8]  # the first two chunks were not captioned again

    uninterrupted = caption_split(captioner, make_workspace(tmp_path / "straight", shapes_root), "shapes", "eval", 2,
                                  TopP(), batch_size=8, progress=False)
    assert uninterrupted.key == resumed.key
    assert (uninterrupted.path / "captions.jsonl").read_text() == (resumed.path / "captions.jsonl").read_text()


def test_generate_captions_reports_quality_once(fitted):
    ws, registry = fitted
    report = generate_captions(["shapes", "shapes-fancy"], "shapes", "eval", 2, Beam(beams=2), ws, registry,
                               max_images=24, teacher=None, progress=False)
    quality = report.quality
    assert set(quality["rows"]) == {"shapes", "shapes-fancy", "ground truth"}
    assert quality["references"] == ["shapes train", "shapes-fancy train", "shapes eval (ground truth)"]
    assert "no teacher" in quality["teacher"]["note"]
    for name in ("samples/samples.html", "samples/samples.png", "diversity.png", "lengths.png", "style_in_vocab.png",
                 "style_kl.png"):
        assert (report.path / "figures" / name).is_file(), name
    assert [s.name for s in report.sets] == ["shapes", "shapes-fancy"]
    assert report.sets[0].captions().keys() == report.sets[1].captions().keys()
    assert "| ground truth |" in report.render()

    client = MlflowClient(ws.mlflow_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    runs = client.search_runs([experiment], "tags.`workbench.kind` = 'captions'")
    assert len(runs) == 1 and runs[0].info.run_id == report.run_id
    logged = runs[0].data.metrics["ground_truth/distinct_1"]
    assert logged == pytest.approx(quality["rows"]["ground truth"]["distinct_1"])
    again = generate_captions(["shapes", "shapes-fancy"], "shapes", "eval", 2, Beam(beams=2), ws, registry,
                              max_images=24, teacher=None, progress=False)
    assert again.hit and again.run_id is None and all(s.hit for s in again.sets)
    assert len(client.search_runs([experiment], "tags.`workbench.kind` = 'captions'")) == 1


def test_an_unfitted_teacher_is_a_note_not_a_failure(fitted):
    ws, registry = fitted
    report = generate_captions(["shapes"], "shapes", "eval", 1, Beam(beams=1), ws, registry, max_images=8,
                               teacher="lite0-minilm", progress=False)
    note = report.quality["teacher"]["note"]
    assert "lite0-minilm" in note and "skipped" in note and note in report.render()


def test_decoding_strings_parse_and_bad_ones_say_what_is_allowed():
    assert parse_decoding("top_p:p=0.8,temperature=0.7") == TopP(p=0.8, temperature=0.7)
    assert parse_decoding("beam:beams=6") == Beam(beams=6)
    with pytest.raises(ConfigError, match="top_p, top_k, beam"):
        parse_decoding("greedy")
    with pytest.raises(ConfigError, match="k"):
        parse_decoding("top_p:k=5")
    with pytest.raises(ConfigError, match="at least the captions per image"):
        generate_captions(["x"], "shapes", "eval", 3, Beam(beams=2), None)


class ColourTeacher:
    """Embeds an image by its mean colour and a caption by the colour it names (a teacher that is right
    about colour and blind to everything else)."""

    name, key, image_size = "colour", "colour-key", 16
    colours = {"red": (220, 30, 30), "green": (30, 160, 40), "blue": (30, 60, 220), "black": (0, 0, 0)}

    def encode_images(self, pixels):
        ink = (pixels.sum(dim=1, keepdim=True) < 2.7).float()  # not the white background
        mean = (pixels * ink).sum(dim=(2, 3)) / ink.sum(dim=(2, 3)).clamp(min=1)
        nearest = torch.cdist(mean, torch.tensor(list(self.colours.values()), dtype=torch.float32) / 255).argmin(1)
        out = torch.full((len(pixels), len(self.colours)), 0.01)
        out[torch.arange(len(pixels)), nearest] += 1
        return torch.nn.functional.normalize(out, dim=-1)

    def encode_texts(self, texts):
        out = torch.full((len(texts), len(self.colours)), 0.01)
        for row, text in enumerate(texts):
            for column, colour in enumerate(self.colours):
                out[row, column] += colour in text
        return torch.nn.functional.normalize(out, dim=-1)


def test_teacher_similarity_is_reported_when_a_teacher_is_fitted(fitted, monkeypatch):
    from workbench.captioners import pipeline

    ws, registry = fitted
    monkeypatch.setattr(pipeline, "_teacher", lambda name, ws: (ColourTeacher(), None))
    report = generate_captions(["shapes"], "shapes", "eval", 2, TopK(k=2), ws, registry, teacher="colour",
                               progress=False)
    similarity = report.quality["teacher"]["similarity"]
    assert set(similarity) == {"shapes", "ground truth", "shuffled"}
    assert similarity["ground truth"]["mean"] > similarity["shuffled"]["mean"] + 0.1
    assert similarity["shapes"]["mean"] > similarity["shuffled"]["mean"] + 0.1  # it names the right colours
    assert (report.path / "figures" / "teacher_similarity.png").is_file()
    assert "teacher colour image-caption cosine" in report.render()
    run = MlflowClient(ws.mlflow_uri).get_run(report.run_id)
    assert run.data.metrics["shuffled/teacher_cosine"] == pytest.approx(similarity["shuffled"]["mean"])
