"""Released CoCa captioners (the ``openclip`` kind): open_clip weights from a hub tag or a local file,
with open_clip's whole tokenizer, stored as a captioner artifact like a fitted one (so fine-tuning and
caption generation treat it as any other captioner). Nothing is trained; where the entry names data, the
held-out caption and contrastive losses on it are recorded, as a fit records them at its end."""

from __future__ import annotations

import json
from pathlib import Path

from open_clip.loss import CoCaLoss

from workbench.captioners.model import Captioner, context_length, count_parameters, create_coca, save_captioner
from workbench.captioners.train import HISTORY, HeldOut, held_out_losses
from workbench.captioners.vocab import PAD, FullVocabulary, bpe
from workbench.config.overrides import ConfigError
from workbench.models.checkpoints import checkpoint_path
from workbench.models.students import image_size_of
from workbench.workspace import Workspace


def load_weights(name: str, model_name: str, pretrained: str):
    """The CoCa ``model_name`` with the weights ``pretrained`` names (a local file or a hub tag); errors say
    which entry failed and how to fix it (a tag without hub access: the same weights as a file)."""
    import open_clip

    where = f"captioner {name!r}"
    path = checkpoint_path(pretrained)
    if path is not None:
        if not path.is_file():
            raise ConfigError(where, f"checkpoint not found: {path}")
        model = create_coca(model_name, bpe().vocab_size)
        try:
            open_clip.load_checkpoint(model, str(path))
        except Exception as error:
            raise ConfigError(where, f"cannot load {model_name} weights from {path}: {type(error).__name__}: "
                                     f"{str(error)[:300]}") from None
        return model
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if pretrained not in tags:
        raise ConfigError(where, f"{model_name} has no pretrained tag {pretrained!r}; known: "
                                 f"{', '.join(tags) or 'none'} — or give a local checkpoint path")
    try:
        return open_clip.create_model(model_name, pretrained=pretrained)
    except Exception as error:
        raise ConfigError(where, f"could not fetch {model_name}/{pretrained} from the model hub "
                                 f"({type(error).__name__}); without hub access, download the checkpoint elsewhere "
                                 f"and name the file: `pretrained: /path/to/checkpoint.bin`") from None


def load_released(name: str, key: str, spec, ws: Workspace, out: Path) -> tuple[Captioner, dict]:
    """Write the released captioner ``spec`` into ``out`` as a captioner artifact; return it and a summary."""
    model = load_weights(name, spec.model, spec.pretrained).eval()
    limit = context_length(spec.model)
    if spec.context_length is not None and spec.context_length > limit:
        raise ConfigError(f"captioner {name!r}", f"context_length {spec.context_length} exceeds the {limit} text "
                                                 f"positions {spec.model} was trained with")
    vocab = FullVocabulary(spec.context_length or limit)
    captioner = Captioner(name, key, model, vocab, spec.model)
    losses = {}
    if spec.refs:
        held = HeldOut(ws, spec.refs, image_size_of(model), vocab, spec.fit.eval_samples, spec.seed)
        loss = CoCaLoss(caption_loss_weight=spec.fit.caption_loss_weight, clip_loss_weight=spec.fit.clip_loss_weight,
                        pad_id=PAD)
        losses = held_out_losses(captioner, held, loss, spec.fit.batch_size)
    save_captioner(model, vocab, spec.model, out)
    rows = [{"step": 0, "seen_samples": 0, "metrics": losses}] if losses else []
    (out / HISTORY).write_text("".join(json.dumps(row) + "\n" for row in rows))
    summary = {"steps": 0, "resumed_from_step": 0, "batch_size": 0, "epochs": 0.0, "train_pairs": 0,
               "train_seconds": 0.0, "final": losses, "vocab_size": len(vocab), "new_tokens": 0,
               "held_out_unknown_rate": 0.0, "parameters": count_parameters(model)}
    return captioner, summary
