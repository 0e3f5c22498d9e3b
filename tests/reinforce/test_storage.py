"""The storage baseline's arithmetic: bit-packed parameters, compressed captions, per-sample totals."""

from __future__ import annotations

import bz2
import gzip
import lzma

import pytest
import torch

from workbench.augment.policy import PRESETS, AugmentPolicy, compress, sample
from workbench.reinforce.storage import (bits_for, caption_text, compressed_captions, decimal_bits, param_bits,
                                         render_storage, shard_baseline, storage_report)

STRONG = PRESETS["strong"]  # stages: crop, RandAugment (always), tone (p 0.5), erasing (p 0.25)


def test_field_widths():
    assert [bits_for(n) for n in (1, 2, 3, 14, 128, 129)] == [0, 1, 2, 4, 7, 8]
    assert decimal_bits(0.0, 1.0) == 14         # 10,001 values at 4 decimals
    assert decimal_bits(-0.5, 0.5) == 14
    assert decimal_bits(0.25, 1.75) == 14       # 15,001 values
    assert decimal_bits(0.0, 0.0001) == 1


def test_strong_rows_pack_to_exact_bits():
    bare = [[0, 0, 128, 128], [[3, 10.5], [0, 0.0]], None, None]
    # crop 4 × 7; TranslateX 4 + sign, Identity 4; tone and erasing: a presence bit each
    assert param_bits([bare], STRONG, 128) == 28 + 5 + 4 + 1 + 1
    full = [[1, 2, 3, 4], [[12, 0.0], [11, 100.0]], [0.1, 1.2], [0.1, 0.2, 0.3, 0.4]]
    # AutoContrast and Solarize are unsigned; tone 1 + 2 × 14; erasing 1 + 4 × 14
    assert param_bits([full], STRONG, 128) == 28 + 8 + 29 + 57
    assert param_bits([bare, full], STRONG, 64) == (24 + 9 + 2) + (24 + 8 + 29 + 57)


def test_flip_and_optional_randaugment_bits():
    policy = AugmentPolicy(flip=0.5, randaugment_ops=1, randaugment_p=0.5)
    assert policy.stages == ["random_resized_crop", "random_horizontal_flip", "rand_augment"]
    assert param_bits([[[0, 0, 8, 8], True, None]], policy, 8) == 12 + 1 + 1
    assert param_bits([[[0, 0, 8, 8], False, [[5, -20.0]]]], policy, 8) == 12 + 1 + 1 + 5


def test_rows_of_another_policy_are_refused():
    with pytest.raises(ValueError, match="do not match the stages"):
        param_bits([[[0, 0, 8, 8]]], STRONG, 8)


def test_sampled_parameters_pack_within_their_field_widths():
    images = torch.randint(0, 256, (32, 48, 48, 3), dtype=torch.uint8)
    _, params = sample(images, STRONG, 32, torch.Generator().manual_seed(0))
    rows = compress(params, STRONG)
    bits = [param_bits([row], STRONG, 48) for row in rows]
    assert sum(bits) == param_bits(rows, STRONG, 48)
    assert min(bits) >= 4 * 6 + 2 * 4 + 2 and max(bits) <= 4 * 6 + 2 * 5 + 29 + 57  # 15 B at most: 14 numbers


def test_captions_take_the_best_standard_compressor():
    assert caption_text([["a b", "c"], [], ["d"]]) == b"a b\nc\n\n\nd\n\n"
    captions = [["a red apple on a white plate", "an apple"]] * 200
    text = caption_text(captions)
    best = min(len(gzip.compress(text, 9, mtime=0)), len(bz2.compress(text, 9)),
               len(lzma.compress(text, preset=9 | lzma.PRESET_EXTREME)))
    size, codec, raw = compressed_captions(captions)
    assert (size, raw) == (best, len(text)) and codec in {"gzip", "bz2", "xz"} and size < raw / 20
    assert compressed_captions([[], []]) == (0, "none", 0)


def test_report_per_sample_and_honest_verdict():
    rows = [[[0, 0, 128, 128], [[3, 10.5], [0, 0.0]], None, None]] * 2   # 39 bits each
    first = shard_baseline([rows, rows], STRONG, 128, [["x"], ["y"]], embedding_values=100)
    assert first["param_bits"] == 4 * 39 and first["param_bytes"] == 20 and first["embedding_bytes"] == 200
    entries = [{"samples": 2, "bytes": 400, "baseline": first,
                "member_bytes": {"npz": 300, "paug.json": 100, "syn.json": 20, "json": 40}},
               {"samples": 2, "bytes": 100, "baseline": {**first, "caption_bytes": 0, "caption_codec": "none",
                                                         "caption_text_bytes": 0},
                "member_bytes": {"npz": 300, "paug.json": 100, "syn.json": 20, "json": 40}}]
    report = storage_report(entries)
    captions = first["caption_bytes"] / 4
    assert report["baseline_per_sample"] == pytest.approx(
        {"embeddings": 100, "augmentation_params": 10, "captions": captions, "total": 110 + captions})
    assert report["per_sample"]["total"] == 125
    assert report["ratio_to_baseline"] == pytest.approx(125 / (110 + captions))
    assert report["uncompressed_members"]["embeddings (npz)"] == 150
    assert "% above the baseline" in render_storage(report)
    assert "% below the baseline" in render_storage(storage_report(entries[1:]))
