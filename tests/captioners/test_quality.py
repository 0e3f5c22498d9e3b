"""Caption-quality numbers on inputs whose answers are known."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.captioners.quality import derangement, distinct_n, style, teacher_similarity, token_stats, words

COLOURS = {"red": 0, "green": 1, "blue": 2}


def test_distinct_n_counts_unique_ngrams_over_all():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a b", "a b"], 2) == pytest.approx(1 / 2)
    assert distinct_n([], 1) == 0.0


def test_token_stats_and_words_keep_punctuation():
    assert words("The letter S.") == ["the", "letter", "s", "."]
    stats = token_stats(["a red circle", "a blue square."])
    assert stats["mean_words"] == pytest.approx(3.5) and stats["distinct_words"] == 6
    assert stats["top_words"][0] == ["a", pytest.approx(2 / 7, abs=1e-4)]


def test_style_is_zero_kl_and_full_vocabulary_for_the_same_usage():
    same = style(["a red circle", "a blue square"], ["a blue square", "a red circle"])
    assert same == {"in_vocab": 1.0, "kl": pytest.approx(0.0)}
    other = style(["the letter s.", "a red circle"], ["a red circle"])
    assert other["in_vocab"] == pytest.approx(3 / 7) and other["kl"] > 0.1


def test_derangement_moves_every_caption():
    for count in (2, 3, 10, 101):
        order = derangement(count, seed=count)
        assert sorted(order) == list(range(count)) and not (order == np.arange(count)).any()


class ColourTeacher:
    """Embeds an image by its mean colour and a caption by the colour word it names."""

    image_size = 8

    def encode_images(self, pixels):
        return F.normalize(pixels.mean(dim=(2, 3)) + 0.05, dim=-1)

    def encode_texts(self, texts):
        out = torch.full((len(texts), 3), 0.05)
        for row, text in enumerate(texts):
            for word, channel in COLOURS.items():
                if word in text:
                    out[row, channel] = 1.0
        return F.normalize(out, dim=-1)


def test_teacher_similarity_ranks_right_captions_above_shuffled_ones():
    colours = list(COLOURS) * 4
    images = np.zeros((len(colours), 8, 8, 3), dtype=np.uint8)
    for i, colour in enumerate(colours):
        images[i, ..., COLOURS[colour]] = 255
    truths = [f"a {c} thing" for c in colours]
    synthetic = {"good": [[f"{c} blob", f"a {c} one"] for c in colours], "wrong": [["a green blob"] for _ in colours]}
    rows = teacher_similarity(ColourTeacher(), images, truths, synthetic, seed=0)
    assert set(rows) == {"good", "wrong", "ground truth", "shuffled"}
    assert rows["good"]["mean"] == pytest.approx(rows["ground truth"]["mean"])
    assert rows["ground truth"]["mean"] > rows["shuffled"]["mean"] + 0.3
    assert rows["wrong"]["mean"] < rows["good"]["mean"] - 0.3 and rows["good"]["images"] == len(colours)
