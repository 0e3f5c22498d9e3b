"""Released CoCa captioners (the ``openclip`` kind): a locally saved CoCa with open_clip's whole tokenizer
loads as a captioner, is fine-tuned like any other, and writes captions; a hub tag without the hub fails
with the way out."""

import pytest
import torch

from workbench.captioners.decode import Beam, TopP, generate_ids
from workbench.captioners.fit import fit_captioner, load_captioner
from workbench.captioners.model import create_coca
from workbench.captioners.pretrained import load_weights
from workbench.captioners.spec import load_registry
from workbench.captioners.train import HeldOut
from workbench.captioners.vocab import bpe
from workbench.config.overrides import ConfigError

from .conftest import make_workspace

REGISTRY = """
captioners:
  released:
    kind: openclip
    model: micro-coca-xs
    pretrained: {checkpoint}
    data: [shapes]
    context_length: 12
    fit: {{batch_size: 16, eval_samples: 32}}
  released-tuned:
    kind: finetune
    parent: released
    data: [shapes-fancy]
    fit: {{steps: 4, batch_size: 16, lr: 1.0e-3, warmup_steps: 1, log_every: 2, eval_every: 2, eval_samples: 16,
           checkpoint_every: 2}}
"""


@pytest.fixture
def released(shapes_root, fancy_root, tmp_path):
    """(workspace, registry, saved state): a micro CoCa with the full BPE saved to a local file."""
    ws = make_workspace(tmp_path / "ws", shapes_root)
    (ws.data_dir / "shapes-fancy").symlink_to(fancy_root, target_is_directory=True)
    torch.manual_seed(0)
    state = create_coca("micro-coca-xs", bpe().vocab_size).state_dict()
    torch.save(state, tmp_path / "coca.pt")
    (tmp_path / "captioners.yaml").write_text(REGISTRY.format(checkpoint=tmp_path / "coca.pt"))
    return ws, load_registry(tmp_path / "captioners.yaml"), state


def test_a_released_coca_is_fine_tuned_and_captions_with_the_full_tokenizer(released):
    ws, registry, state = released
    loaded = fit_captioner("released", ws, registry, progress=False)
    assert loaded.info["kind"] == "openclip" and loaded.info["fit"]["vocab_size"] == 49408
    assert {"eval/caption_loss", "eval/contrastive_loss"} <= set(loaded.info["fit"]["final"])
    weights = load_captioner("released", ws, registry).model.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in state.items())  # the file's weights, untouched

    tuned = fit_captioner("released-tuned", ws, registry, progress=False, expect="finetune")
    assert tuned.info["parent_key"] == loaded.key and tuned.info["fit"]["new_tokens"] == 0
    captioner = load_captioner("released-tuned", ws, registry)
    assert not torch.equal(captioner.model.state_dict()["visual.conv1.weight"], state["visual.conv1.weight"])
    assert captioner.vocab.context_length == 12 and len(captioner.vocab) == 49408
    tokens = captioner.vocab(["There is a red circle at the left!"])[0]
    assert tokens[0] == bpe().sot_token_id and bpe().eot_token_id in tokens.tolist()
    assert captioner.vocab.decode(tokens) == "there is a red circle at the left!"  # open_clip's BPE lowercases

    held = HeldOut(ws, registry.captioners["released"].refs, captioner.image_size, captioner.vocab, 4, 0)
    pixels = held.pixels(0, 4)
    for decoding, samples in ((TopP(p=0.9), 2), (Beam(beams=2), 2)):
        captions = captioner.caption(pixels, decoding, samples, torch.Generator().manual_seed(0))
        assert len(captions) == 4 and all(len(per_image) == samples for per_image in captions)
        assert all(isinstance(c, str) for per_image in captions for c in per_image)
    ids = generate_ids(captioner.model, captioner.normalize(pixels), TopP(), 2, captioner.vocab.context_length,
                       torch.Generator().manual_seed(0), captioner.vocab.specials)
    assert ids.shape[-1] <= 12 and (ids[..., 0] == bpe().sot_token_id).all()  # the context_length knob
    assert not (ids[..., 1:] == bpe().sot_token_id).any()  # start is never generated


def test_a_hub_tag_without_the_hub_says_how_to_use_a_local_file(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # fail at once, not after timeouts
    with pytest.raises(ConfigError, match="pretrained: /path/to/checkpoint.bin"):
        load_weights("web", "coca_ViT-B-32", "laion2b_s13b_b90k")
    with pytest.raises(ConfigError, match="no pretrained tag 'nope'"):
        load_weights("web", "coca_ViT-B-32", "nope")
    with pytest.raises(ConfigError, match="checkpoint not found"):
        load_weights("web", "micro-coca-xs", "/nowhere/coca.pt")


def test_the_data_a_released_captioner_is_shown_on_is_not_what_it_trained_on(released):
    from workbench.study.lineage import captioner_lineage

    _, registry, _ = released
    assert captioner_lineage("released", registry).trained == []
    assert captioner_lineage("released", registry).external == [f"captioner released: released micro-coca-xs weights "
                                                                f"({registry.captioners['released'].pretrained})"]
    assert [t.ref.dataset for t in captioner_lineage("released-tuned", registry).trained] == ["shapes-fancy"]
