"""``kind: lit``: frozen pretrained towers (EfficientNet-Lite, MiniLM) with projections and a logit scale
trained contrastively on the base sets (LiT-style) — real pretrained knowledge, offline.

The fitting itself lives in ``workbench.teachers.lit`` (torch-heavy, imported by the methods that need it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from workbench.config.files import Strict
from workbench.evaluate.lineage import Lineage, Trained
from workbench.evaluate.spec import DataRef
from workbench.teachers.kinds import (BASE_SETS, FittedEntry, ScoredEntry, TeacherKind, register_kind, suite_datasets,
                                      suite_input)


class LitFit(Strict):
    """How the projections are fitted on cached tower features."""

    steps: int = Field(default=2000, gt=0)
    batch_size: int = Field(default=1024, gt=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.05, ge=0)
    warmup_steps: int = Field(default=100, ge=0)
    views: int = Field(default=2, ge=1)
    """Stored views per training image: the whole image, then random crops (features computed once)."""
    crop_scale: tuple[float, float] = (0.4, 1.0)
    max_train_samples: int | None = Field(default=None, gt=0)
    """Cap on training images (a seeded subset): for quick checks."""


class LitTeacherSpec(ScoredEntry, FittedEntry):
    kind: Literal["lit"]
    image_tower: Literal["efficientnet-lite0", "efficientnet-lite1"]
    text_tower: Literal["all-minilm-l6-v2"] = "all-minilm-l6-v2"
    image_size: int = Field(default=96, ge=32)
    """Tower input resolution. EfficientNet-Lite0 embeds ~60 images/s per core at 128 px (measured), ~100
    at 96 px: the base sets' 51k images × 2 views take ~9 min on 2 cores at 96 px. The sources are small
    (glyphs are 64 px renders), so little is lost below the towers' native 224/240 px."""
    embed_dim: int = Field(default=256, gt=0)
    hidden: int = Field(default=1024, ge=0)
    """Width of the MLP projections' hidden layer; 0 makes them linear."""
    data: list[str] = Field(default_factory=lambda: list(BASE_SETS), min_length=1)
    """Train splits the projections are fitted on (never an eval split)."""
    fit: LitFit = LitFit()
    seed: int = 0


@register_kind
class LitKind(TeacherKind):
    name = "lit"
    spec = LitTeacherSpec

    def identity(self, name, spec: LitTeacherSpec, ws):
        from workbench.data.build import dataset_fingerprints  # the data sources load torch; specs must not

        return spec.model_dump(mode="json"), suite_input(spec.suite) | dataset_fingerprints(ws, spec.data)

    def required_datasets(self, name, spec: LitTeacherSpec, ws) -> set[str]:
        return suite_datasets(spec.suite) | set(spec.data)

    def fit(self, name, spec: LitTeacherSpec, ws, out: Path, reporter, progress: bool):
        from workbench.teachers.lit import fit_lit_teacher  # torch and the towers

        log = reporter.log_metrics if reporter else (lambda metrics, step: None)
        return fit_lit_teacher(spec, ws, out, progress, log), spec.suite

    def load(self, name, spec: LitTeacherSpec, artifact: Path):
        from workbench.teachers.lit import load_lit_teacher  # torch and the towers

        return load_lit_teacher(spec, artifact)

    def describe(self, spec: LitTeacherSpec) -> str:
        return f"lit: {spec.image_tower} + {spec.text_tower} @{spec.image_size}px"

    def embed_dim(self, name, spec: LitTeacherSpec) -> int:
        return spec.embed_dim

    def lineage(self, name, spec: LitTeacherSpec, by: str, of_recipe):
        return Lineage([Trained(DataRef(dataset=d), by) for d in spec.data],
                       [f"{by}: {spec.image_tower} (ImageNet) and {spec.text_tower} (sentence pairs), frozen"])

    def fit_estimate(self, name, spec: LitTeacherSpec, ws):
        from workbench import estimates  # builds student models to count parameters (torch)

        seconds = estimates.lit_fit_seconds(spec, sum(estimates.train_count(ws, d) for d in spec.data))
        return seconds, f"LiT {spec.image_tower} @{spec.image_size}px on {'+'.join(spec.data)}"

    def views_per_s(self, name, spec: LitTeacherSpec) -> float:
        from workbench import estimates  # builds student models to count parameters (torch)

        return estimates.lit_views_per_s(spec.image_tower, spec.image_size)
