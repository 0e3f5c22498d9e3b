"""open_clip teachers: any open_clip model with a hub tag or a local checkpoint (the papers' teachers).

No hub is reachable on many machines this runs on; a tag that cannot be fetched fails with a message
that says how to pass the same weights as a local file instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.models.checkpoints import checkpoint_path
from workbench.models.encoder import OpenClipEncoder
from workbench.teachers.towers import MissingWeightsError

if TYPE_CHECKING:
    from workbench.teachers.kinds.openclip import OpenClipTeacherSpec


def load_openclip_teacher(spec: OpenClipTeacherSpec) -> OpenClipEncoder:
    import open_clip

    from workbench.models.students import make_encoder, register_micro_configs

    register_micro_configs()
    if spec.model not in open_clip.list_models():
        raise KeyError(f"unknown open_clip model {spec.model!r} (`workbench models` lists them)")
    path = checkpoint_path(spec.pretrained)
    if path is not None:
        if not path.is_file():
            raise MissingWeightsError(f"teacher checkpoint not found: {path}")
        try:
            model = open_clip.create_model(spec.model, pretrained=str(path))
        except Exception as error:
            raise MissingWeightsError(f"cannot load {spec.model} weights from {path}: "
                                      f"{type(error).__name__}: {str(error)[:300]}") from None
    else:
        tags = open_clip.list_pretrained_tags_by_model(spec.model)
        if spec.pretrained not in tags:
            raise KeyError(f"{spec.model} has no pretrained tag {spec.pretrained!r}; known: {', '.join(tags) or 'none'}"
                           f" — or give a local checkpoint path")
        try:
            model = open_clip.create_model(spec.model, pretrained=spec.pretrained)
        except Exception as error:
            raise MissingWeightsError(
                f"could not fetch {spec.model}/{spec.pretrained} from the model hub ({type(error).__name__}); "
                f"without hub access, download the checkpoint elsewhere and name the file: "
                f"openclip:{spec.model}//path/to/checkpoint.bin (or `pretrained: /path/...` in a zoo file)") from None
    model.eval()
    return make_encoder(model, spec.model)
