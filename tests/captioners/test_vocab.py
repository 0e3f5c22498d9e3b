"""The compact vocabulary: reversible, extendable without moving old ids, and honest about unknown words."""

import torch

from workbench.captioners.vocab import EOT, PAD, SOT, UNK, Vocabulary, tidy

CAPTIONS = ["a red circle on the left", "a blue square on the top", "The letter S.", "teddy bear's picnic, outdoors",
            "T-shirt, flat-theme"]


def test_encode_then_decode_gives_the_caption_back():
    vocab = Vocabulary.build(CAPTIONS, context_length=16)
    ids = vocab(CAPTIONS)
    assert ids.shape == (len(CAPTIONS), 16) and ids.max() < len(vocab)
    assert (ids[:, 0] == SOT).all() and ((ids == EOT).sum(dim=1) == 1).all()
    assert [vocab.decode(row) for row in ids] == [tidy(c.lower()) for c in CAPTIONS]
    assert vocab.decode(ids[2]) == "the letter s." and vocab.decode(ids[3]) == "teddy bear's picnic, outdoors"


def test_vocabulary_is_compact_and_survives_saving(tmp_path):
    vocab = Vocabulary.build(CAPTIONS, context_length=16)
    assert len(vocab) < 40  # the captions' BPE ids plus four specials, not open_clip's 49,408
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded.bpe_ids == vocab.bpe_ids and torch.equal(loaded(CAPTIONS), vocab(CAPTIONS))


def test_unknown_words_are_marked_and_dropped_when_decoding():
    vocab = Vocabulary.build(CAPTIONS[:2], context_length=16)
    ids = vocab("a red zebra")[0]
    assert UNK in ids.tolist() and vocab.decode(ids) == "a red"
    assert 0 < vocab.unknown_rate(["a red zebra"]) < 1 and vocab.unknown_rate(CAPTIONS[:2]) == 0


def test_extending_keeps_the_parents_ids():
    parent = Vocabulary.build(CAPTIONS[:2], context_length=16)
    child = Vocabulary.build(["a red zebra on the left"], context_length=16, base=parent)
    assert child.bpe_ids[:len(parent.bpe_ids)] == parent.bpe_ids and len(child) > len(parent)
    assert torch.equal(child(CAPTIONS[:2]), parent(CAPTIONS[:2]))
    assert child.decode(child("a red zebra")[0]) == "a red zebra"


def test_long_captions_are_cut_but_keep_their_end():
    vocab = Vocabulary.build(["one two three four five six seven eight"], context_length=6)
    ids = vocab("one two three four five six seven eight")[0]
    assert ids.tolist()[-1] == EOT and PAD not in ids.tolist()
    assert vocab.decode(ids) == "one two three four"
