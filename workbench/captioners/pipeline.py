"""Caption generation for several captioners, with a quality report logged to MLflow.

``generate_captions`` fits (or finds) each captioner, runs the ``captions`` stage for each, then builds
a ``caption-quality`` artifact comparing them with the ground truth: diversity, token statistics,
style against the sets the captioners were trained on, samples, and teacher image-text similarity.
That artifact is cached under the caption keys and the teacher's key, so a rerun costs nothing and
logs no new run, while fitting a teacher later makes the next run add the similarity figure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from workbench.captioners import figures, quality
from workbench.captioners.decode import Beam, TopK, TopP
from workbench.captioners.fit import fit_captioner, load_captioner
from workbench.captioners.generate import CaptionSet, caption_split, read_captions
from workbench.captioners.spec import Registry, captioner_spec, lineage, load_registry
from workbench.captioners.train import ref_arrays
from workbench.config.overrides import ConfigError
from workbench.data.arrays import load_split_arrays
from workbench.data.build import ensure_datasets
from workbench.evaluate.spec import DataRef
from workbench.models.students import training_load_size
from workbench.stages.cache import StageResult
from workbench.stages.registry import register_stage
from workbench.stages.runner import TrackedRun, run_tracked
from workbench.teachers.fit import load_teacher
from workbench.tracking.mlflow_store import TAG_PREFIX
from workbench.workspace import Workspace

CAPTION_QUALITY = register_stage("caption-quality", version=1)
EXPERIMENT = "captioners"
DEFAULT_TEACHER = "lite0-minilm"
SAMPLES_SHOWN = 16
GROUND_TRUTH = "ground truth"


@dataclass
class GenerationReport:
    dataset: str
    split: str
    sets: list[CaptionSet]
    path: Path
    """The caption-quality artifact: quality.json, quality.md, figures/."""
    hit: bool
    run_id: str | None
    """The MLflow run that logged it (None when an identical report was logged before)."""

    @property
    def quality(self) -> dict:
        return json.loads((self.path / "quality.json").read_text())

    def render(self) -> str:
        lines = [f"{s.name}: {'hit' if s.hit else 'generated'} ({s.key}) {s.summary['images']} images, "
                 f"{s.summary['captions']} captions kept, {s.summary['duplicates']} duplicates and "
                 f"{s.summary['empty']} empty dropped -> {s.path / 'captions.jsonl'}" for s in self.sets]
        return "\n".join(lines + ["", (self.path / "quality.md").read_text(), f"figures: {self.path / 'figures'}"])


def _teacher(name: str | None, ws: Workspace):
    """The fitted teacher, or (None, why not)."""
    if name is None:
        return None, "no teacher named: teacher similarity skipped"
    try:
        return load_teacher(name, ws), None
    except (ConfigError, FileNotFoundError) as error:
        return None, f"teacher {name!r} unavailable ({error}): teacher similarity skipped"


def reference_sets(names: Sequence[str], registry: Registry) -> list[DataRef]:
    """The data whose train captions the style metrics compare against: every set in the lineages."""
    refs: list[DataRef] = []
    for name in names:
        for ancestor in lineage(name, registry):
            refs += [r for r in captioner_spec(ancestor, registry).refs if r not in refs]
    return refs


def _metric_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-./:]", "_", text)


def build_quality(out: Path, ws: Workspace, sets: list[CaptionSet], dataset: str, split: str, image_size: int,
                  references: list[DataRef], teacher, note: str | None, seed: int) -> None:
    """quality.json, quality.md and figures/ for ``sets`` (captions of the same images)."""
    arrays = load_split_arrays(ws.dataset_dir(dataset), split, image_size, progress=False)
    index = {uid: i for i, uid in enumerate(arrays.uids)}
    per_set = {s.name: read_captions(s.path / "captions.jsonl") for s in sets}
    uids = list(per_set[sets[0].name])
    rows = [index[u] for u in uids]
    truths = [arrays.captions[i] for i in rows]
    synthetic = {name: [captions[u] for u in uids] for name, captions in per_set.items()}
    flat = {name: [c for caps in per for c in caps] for name, per in synthetic.items()} | {GROUND_TRUTH: truths}
    refs = {f"{r.describe()} train": ref_arrays(ws, r, "train", training_load_size(image_size)).captions
            for r in references}
    refs[f"{dataset} {split} (ground truth)"] = truths
    report: dict = {"dataset": dataset, "split": split, "images": len(uids), "references": list(refs),
                    "captioners": {s.name: {"key": s.key, **s.summary} for s in sets}, "rows": {}}
    for label, captions in flat.items():
        report["rows"][label] = {"distinct_1": quality.distinct_n(captions, 1),
                                 "distinct_2": quality.distinct_n(captions, 2), "tokens": quality.token_stats(captions),
                                 "style": {ref: quality.style(captions, texts) for ref, texts in refs.items()}}
    folder = out / "figures"
    folder.mkdir()
    figures.sample_page(folder / "samples", arrays.images[rows[:SAMPLES_SHOWN]], truths[:SAMPLES_SHOWN],
                        {name: per[:SAMPLES_SHOWN] for name, per in synthetic.items()},
                        f"synthetic captions of {dataset}/{split}")
    figures.bar_chart({label: {"distinct-1": r["distinct_1"], "distinct-2": r["distinct_2"]}
                       for label, r in report["rows"].items()}, folder / "diversity.png", "caption diversity",
                      "unique / all n-grams")
    figures.length_histogram({label: [len(quality.words(c)) for c in captions] for label, captions in flat.items()},
                             folder / "lengths.png", "caption length")
    for metric, title in (("in_vocab", "share of words in the reference's vocabulary"),
                          ("kl", "unigram KL(captions || reference), lower = closer")):
        by_label = {label: {ref: r["style"][ref][metric] for ref in refs} for label, r in report["rows"].items()}
        figures.bar_chart(by_label, folder / f"style_{metric}.png", title, metric)
    if teacher is not None:
        images = load_split_arrays(ws.dataset_dir(dataset), split, teacher.image_size, progress=False).images[rows]
        similarity = quality.teacher_similarity(teacher, images, truths, synthetic, seed)
        report["teacher"] = {"name": teacher.name, "key": teacher.key, "similarity": similarity}
        figures.bar_chart({label: {"mean cosine": v["mean"]} for label, v in similarity.items()},
                          folder / "teacher_similarity.png", f"teacher {teacher.name}: image-caption cosine", "cosine")
    else:
        report["teacher"] = {"note": note}
    (out / "quality.json").write_text(json.dumps(report, indent=2))
    (out / "quality.md").write_text(render_quality(report))


def render_quality(report: dict) -> str:
    refs = report["references"]
    head = ["captions", "distinct-1", "distinct-2", "words", "distinct words"] + \
        [f"in-vocab {r}" for r in refs] + [f"KL {r}" for r in refs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, row in report["rows"].items():
        cells = [label, f"{row['distinct_1']:.3f}", f"{row['distinct_2']:.3f}", f"{row['tokens']['mean_words']:.2f}",
                 str(row["tokens"]["distinct_words"])]
        cells += [f"{row['style'][r]['in_vocab']:.3f}" for r in refs] + [f"{row['style'][r]['kl']:.3f}" for r in refs]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for label, row in report["rows"].items():
        lines.append(f"top words, {label}: " + ", ".join(f"{w} {s:.3f}" for w, s in row["tokens"]["top_words"][:10]))
    teacher = report["teacher"]
    lines.append("")
    if "similarity" in teacher:
        lines.append(f"teacher {teacher['name']} image-caption cosine (mean ± stderr over images):")
        lines += [f"  {label:16} {v['mean']:.4f} ± {v['stderr']:.4f}" for label, v in teacher["similarity"].items()]
    else:
        lines.append(f"note: {teacher['note']}")
    return "\n".join(lines) + "\n"


def _flat_metrics(report: dict) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for label, row in report["rows"].items():
        prefix = _metric_name(label)
        metrics |= {f"{prefix}/distinct_1": row["distinct_1"], f"{prefix}/distinct_2": row["distinct_2"],
                    f"{prefix}/mean_words": row["tokens"]["mean_words"],
                    f"{prefix}/distinct_words": row["tokens"]["distinct_words"]}
        for ref, values in row["style"].items():
            metrics |= {f"{prefix}/style/{_metric_name(ref)}/{k}": v for k, v in values.items()}
    for label, values in report["teacher"].get("similarity", {}).items():
        metrics |= {f"{_metric_name(label)}/teacher_cosine": values["mean"],
                    f"{_metric_name(label)}/teacher_cosine_stderr": values["stderr"]}
    for name, summary in report["captioners"].items():
        metrics |= {f"{_metric_name(name)}/{k}": summary[k] for k in ("captions", "duplicates", "empty")}
    return metrics


def generate_captions(names: Sequence[str], dataset: str, split: str, samples: int, decoding: TopP | TopK | Beam,
                      ws: Workspace, registry: Registry | None = None, max_images: int | None = None, seed: int = 0,
                      batch_size: int = 64, teacher: str | None = DEFAULT_TEACHER,
                      progress: bool = True) -> GenerationReport:
    """``samples`` captions per image of ``dataset``/``split`` from each captioner in ``names`` (fitted
    first if needed), one cached artifact per captioner, and their quality report in MLflow."""
    if not names:
        raise ConfigError("captions", "name at least one captioner")
    if samples < 1:
        raise ConfigError("captions", f"captions per image must be at least 1, got {samples}")
    if isinstance(decoding, Beam) and decoding.beams < samples:
        raise ConfigError("decoding beam", f"beams ({decoding.beams}) must be at least the captions per image "
                                           f"({samples})")
    registry = registry or load_registry()
    references = reference_sets(names, registry)
    ensure_datasets({dataset, *(r.dataset for r in references)}, ws.ensure(), progress)
    sets, image_size = [], 0
    for name in names:
        fit_captioner(name, ws, registry, progress)
        captioner = load_captioner(name, ws, registry)
        image_size = image_size or captioner.image_size
        sets.append(caption_split(captioner, ws, dataset, split, samples, decoding, max_images, seed, batch_size,
                                  progress))
    loaded, note = _teacher(teacher, ws)
    config = {"references": [r.describe() for r in references], "seed": seed, "image_size": image_size,
              "teacher": teacher}
    inputs = {s.name: s.key for s in sets} | {"teacher": loaded.key if loaded else "none"}
    key = CAPTION_QUALITY.key(config, inputs)

    def build(out: Path, run: TrackedRun) -> None:
        build_quality(out, ws, sets, dataset, split, image_size, references, loaded, note, seed)

    def log(run: TrackedRun, result: StageResult) -> None:
        tracker, run_id = run.tracker, run.run_id
        report = json.loads((result.path / "quality.json").read_text())
        tracker.log_metrics(run_id, _flat_metrics(report), 0)
        for path in ("quality.json", "quality.md"):
            tracker.log_file(run_id, result.path / path)
        for path in sorted((result.path / "figures").rglob("*")):
            if path.is_file():
                tracker.log_file(run_id, path, str(path.parent.relative_to(result.path)))
        for s in sets:
            tracker.log_file(run_id, s.path / "captions.jsonl", f"captions/{_metric_name(s.name)}")
        if note:
            tracker.set_tags(run_id, {f"{TAG_PREFIX}note": note})

    tags = {f"{TAG_PREFIX}kind": "captions", f"{TAG_PREFIX}dataset": f"{dataset}/{split}"}
    tags |= {f"{TAG_PREFIX}stage.captions.{_metric_name(s.name)}": s.key for s in sets}
    params = {"captioners": list(names), "dataset": dataset, "split": split, "samples": samples,
              "max_images": max_images, "seed": seed, "teacher": teacher, "decoding": decoding.model_dump(mode="json")}
    result, run_id = run_tracked(CAPTION_QUALITY, key, ws, experiment=EXPERIMENT, run_name=f"captions {dataset}/{split}",
                                 tags=tags, params=params, build=build, log=log)
    return GenerationReport(dataset, split, sets, result.path, result.hit, run_id)
