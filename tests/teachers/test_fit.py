"""Teacher zoo: every source kind fits (or loads), scores on the suite, logs to MLflow, and is cached."""

import json
from pathlib import Path

import open_clip
import pytest
import torch
from mlflow import MlflowClient

from workbench.config.overrides import ConfigError
from workbench.models.students import register_micro_configs
from workbench.teachers.fit import EXPERIMENT, fit_teacher, list_teachers, load_teacher
from workbench.teachers.towers import MissingWeightsError
from workbench.teachers.zoo import load_zoo, parse_inline

ZOO = """
teachers:
  lite0-tiny:
    kind: lit
    image_tower: efficientnet-lite0
    image_size: 32
    embed_dim: 32
    hidden: 64
    data: [shapes]
    suite: {suite}
    fit: {{steps: 30, batch_size: 16, warmup_steps: 5, views: 2}}
  scratch-tiny:
    kind: scratch
    profile: smoke
    set: {{data.train: [shapes], eval.suite: {suite}, train.steps: 6}}
  local-openclip:
    kind: openclip
    model: micro-vit-xs
    pretrained: {checkpoint}
    suite: {suite}
"""


@pytest.fixture
def zoo(tmp_path: Path, shapes_suite: str):
    register_micro_configs()
    checkpoint = tmp_path / "micro.pt"
    torch.save(open_clip.create_model("micro-vit-xs").state_dict(), checkpoint)
    path = tmp_path / "zoo.yaml"
    path.write_text(ZOO.format(suite=shapes_suite, checkpoint=checkpoint))
    return path


@pytest.mark.parametrize("name", ["lite0-tiny", "scratch-tiny", "local-openclip"])
def test_each_source_fits_scores_logs_and_is_cached(shapes_ws, zoo, name):
    fitted = fit_teacher(name, shapes_ws, load_zoo(zoo), progress=False)
    assert not fitted.hit and {"zeroshot", "retrieval", "avg"} <= set(fitted.metrics)
    assert fitted.info["logit_scale"] > 0 and fitted.info["embed_dim"] > 0

    teacher = load_teacher(name, shapes_ws, load_zoo(zoo))
    pixels = torch.rand(3, 3, teacher.image_size, teacher.image_size)
    images, texts = teacher.encode_images(pixels), teacher.encode_texts(["a red circle on the left"] * 3)
    assert images.shape == (3, fitted.info["embed_dim"]) and texts.shape == (3, fitted.info["embed_dim"])
    assert torch.allclose(images.norm(dim=-1), torch.ones(3), atol=1e-4)

    again = fit_teacher(name, shapes_ws, load_zoo(zoo), progress=False)
    assert again.hit and again.key == fitted.key and again.metrics == fitted.metrics
    client = MlflowClient(shapes_ws.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["teacher/logit_scale"] == pytest.approx(fitted.info["logit_scale"])
    assert runs[0].data.metrics["eval/avg"] == pytest.approx(fitted.metrics["avg"])  # the final eval, not a periodic one
    assert runs[0].data.tags["workbench.teacher"] == name


def test_a_suite_without_the_usual_columns_fits_and_lists(shapes_ws, zoo, tmp_path):
    from click.testing import CliRunner

    from workbench.cli import main

    suite = tmp_path / "retrieval_only.yaml"
    suite.write_text("tasks:\n  - {name: ret_shapes, kind: retrieval, dataset: shapes, domain: in-domain}\n"
                     "headline:\n  recall: {tasks: all}\n")
    own = tmp_path / "own_zoo.yaml"  # the zoo fixture saved its checkpoint in this tmp_path
    own.write_text(f"teachers:\n  retrieval-only: {{kind: openclip, model: micro-vit-xs, "
                   f"pretrained: {tmp_path / 'micro.pt'}, suite: {suite}}}\n")
    result = CliRunner().invoke(main, ["--workspace", str(shapes_ws.root), "teacher", "fit", "retrieval-only",
                                       "--zoo", str(own)])
    assert result.exit_code == 0, result.output
    assert "recall 0." in result.output and "avg" not in result.output
    assert "recall 0." in {line.split()[0]: line for line in list_teachers(shapes_ws, own).splitlines()}[
        "retrieval-only"]


def test_lit_fit_learns_above_chance(shapes_ws, zoo):
    fitted = fit_teacher("lite0-tiny", shapes_ws, load_zoo(zoo), progress=False)
    result = json.loads((fitted.path / "eval.json").read_text())
    assert result["metrics"]["zs_shapes/top1"] > result["chance"]["zs_shapes/top1"]
    fit = fitted.info["fit"]
    assert fit["views"] == 2 and fit["train_pairs"] > 0 and "feature_seconds" in fit


def test_unfitted_teacher_says_how_to_fit_it(shapes_ws, zoo):
    with pytest.raises(ConfigError, match="workbench teacher fit lite0-tiny"):
        load_teacher("lite0-tiny", shapes_ws, load_zoo(zoo))
    listing = {line.split()[0]: line for line in list_teachers(shapes_ws, zoo).splitlines()}
    assert "not fitted" in listing["lite0-tiny"] and "openclip: micro-vit-xs/" in listing["local-openclip"]


def test_unknown_teacher_names_the_known_ones(shapes_ws, zoo):
    with pytest.raises(ConfigError, match="lite0-tiny"):
        fit_teacher("lite9", shapes_ws, load_zoo(zoo), progress=False)


def test_inline_openclip_names_a_model_and_a_path():
    spec = parse_inline("openclip:ViT-B-16//data/vitb16.bin")
    assert (spec.model, spec.pretrained) == ("ViT-B-16", "/data/vitb16.bin")
    with pytest.raises(ConfigError, match="openclip:MODEL/TAG_OR_PATH"):
        parse_inline("openclip:ViT-B-16")


def test_hub_tag_offline_fails_with_a_way_out(monkeypatch):
    from workbench.teachers.openclip import load_openclip_teacher

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # fail at once, not after timeouts
    with pytest.raises(MissingWeightsError, match="openclip:ViT-B-32//path/to/checkpoint.bin"):
        load_openclip_teacher(parse_inline("openclip:ViT-B-32/laion2b_s34b_b79k"))


def test_broken_checkpoint_is_named(tmp_path):
    from workbench.teachers.openclip import load_openclip_teacher

    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(MissingWeightsError, match="broken.pt"):
        load_openclip_teacher(parse_inline(f"openclip:micro-vit-xs/{broken}"))
    with pytest.raises(MissingWeightsError, match="not found"):
        load_openclip_teacher(parse_inline(f"openclip:micro-vit-xs/{tmp_path / 'missing.pt'}"))


def test_broken_tower_weights_are_named(tmp_path):
    from workbench.teachers.towers import EfficientNetLiteTower

    broken = tmp_path / "lite0.pth"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(MissingWeightsError, match="lite0.pth"):
        EfficientNetLiteTower("efficientnet-lite0", weights=broken)


def test_feature_extraction_resumes_at_its_last_chunk(tmp_path):
    from workbench.stages.cache import StageCache
    from workbench.teachers.lit import CHUNK, cached_features

    cache, rows, calls = StageCache(tmp_path), CHUNK + 10, []

    def compute(start, stop, fail_at=None):
        if start == fail_at:
            raise KeyboardInterrupt  # killed mid-stage
        calls.append(start)
        return torch.arange(start, stop, dtype=torch.float32).unsqueeze(1).repeat(1, 4)

    with pytest.raises(KeyboardInterrupt):
        cached_features(cache, "k", rows, [lambda a, b: compute(a, b, fail_at=CHUNK)], "x", progress=False)
    assert calls == [0] and not cache.has("features", "k")
    features = cached_features(cache, "k", rows, [compute], "x", progress=False)
    assert calls == [0, CHUNK]  # the first chunk was not computed again
    assert features.shape == (1, rows, 4) and features[0, -1, 0] == rows - 1
