"""``kind: openclip``: any open_clip model with a hub tag or a local checkpoint (the papers' DFN ViT-L-14s).

Not fitted here: its stage loads and scores it. Loading lives in ``workbench.teachers.openclip``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from workbench.evaluate.lineage import Lineage
from workbench.teachers.kinds import ScoredEntry, TeacherKind, register_kind, suite_datasets, suite_input


class OpenClipTeacherSpec(ScoredEntry):
    kind: Literal["openclip"]
    model: str
    """An open_clip model name (`workbench models` lists them)."""
    pretrained: str
    """A pretrained tag (needs the hub) or a local checkpoint path."""


def model_embed_dim(model: str) -> int:
    """The embedding width of an open_clip model config (micro configs included)."""
    import open_clip  # torch

    from workbench.models.students import register_micro_configs

    register_micro_configs()
    return int(open_clip.get_model_config(model)["embed_dim"])


@register_kind
class OpenClipKind(TeacherKind):
    name = "openclip"
    spec = OpenClipTeacherSpec

    def identity(self, name, spec: OpenClipTeacherSpec, ws):
        from workbench.models.checkpoints import checkpoint_identity

        inputs = suite_input(spec.suite)
        return {"model": spec.model, **checkpoint_identity(spec.pretrained)}, inputs

    def required_datasets(self, name, spec: OpenClipTeacherSpec, ws) -> set[str]:
        return suite_datasets(spec.suite)

    def load(self, name, spec: OpenClipTeacherSpec, artifact: Path):
        from workbench.teachers.openclip import load_openclip_teacher  # open_clip and torch

        return load_openclip_teacher(spec)

    def describe(self, spec: OpenClipTeacherSpec) -> str:
        return f"openclip: {spec.model}/{spec.pretrained}"

    def embed_dim(self, name, spec: OpenClipTeacherSpec) -> int:
        return model_embed_dim(spec.model)

    def lineage(self, name, spec: OpenClipTeacherSpec, by: str, of_recipe):
        return Lineage([], [f"{by}: open_clip {spec.model} weights {spec.pretrained!r} (their data is not "
                            f"known here)"])

    def fit_estimate(self, name, spec: OpenClipTeacherSpec, ws):
        return None, f"open_clip {spec.model} ({spec.pretrained}): loaded and scored"
