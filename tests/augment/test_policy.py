"""Replayable augmentation: sampled pixels equal replayed pixels, at any size; stored layout; tone target."""

import json
import math

import pytest
import torch

from workbench.augment.crop import CropParams, apply_crop, crop_resize
from workbench.augment.ops import OP_NAMES
from workbench.augment.policy import PRESETS, AugmentPolicy, apply, compress, decompress, sample, stored_numbers

EVERYTHING = AugmentPolicy(crop_scale=(0.08, 1.0), flip=0.5, randaugment_ops=3, tone_psnr=(20.0, 35.0), tone_p=0.7,
                           erase_p=0.5)


def images(batch: int = 48, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Smooth random images (blurred noise plus gradients): every op changes them visibly."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(batch, 3, size // 8, size // 8, generator=g)
    smooth = torch.nn.functional.interpolate(noise, size=size, mode="bilinear", align_corners=False)
    ramp = torch.linspace(0, 1, size).view(1, 1, 1, size)
    return (0.7 * smooth + 0.3 * ramp).mul(255).round().byte().permute(0, 2, 3, 1).contiguous()


@pytest.mark.parametrize("name", [*PRESETS, "everything"])
def test_replaying_stored_parameters_gives_the_sampled_pixels(name):
    policy = EVERYTHING if name == "everything" else PRESETS[name]
    source = images()
    pixels, params = sample(source, policy, 40, torch.Generator().manual_seed(3))
    stored = json.loads(json.dumps(compress(params, policy)))  # what a shard holds
    replayed = apply(source, decompress(stored, policy), policy, 40, source_size=64, reference_size=40)
    assert pixels.shape == (48, 3, 40, 40) and pixels.dtype == torch.float32
    assert torch.equal(replayed, pixels)


def test_replay_at_another_resolution_and_load_size_matches_a_resized_sample():
    """A student at 24 px loading images at 32 px replays what the teacher saw at 48 px from 64 px."""
    policy = AugmentPolicy(crop_scale=(0.3, 1.0), flip=0.5, randaugment_ops=2, randaugment_p=0.0)
    source = images(size=64)
    teacher_view, params = sample(source, policy, 48, torch.Generator().manual_seed(1))
    small_source = torch.nn.functional.interpolate(source.permute(0, 3, 1, 2).float(), size=32, mode="area")
    small_source = small_source.round().byte().permute(0, 2, 3, 1).contiguous()
    student_view = apply(small_source, params, policy, 24, source_size=64, reference_size=48)
    expected = torch.nn.functional.interpolate(teacher_view, size=24, mode="area")
    assert student_view.shape == (48, 3, 24, 24)
    assert (student_view - expected).abs().mean() < 0.03  # same content; only resampling differs


def test_every_stage_leaves_its_mark_and_skips_are_stored_as_none():
    source = images(batch=200)
    _, params = sample(source, EVERYTHING, 32, torch.Generator().manual_seed(0))
    rows = compress(params, EVERYTHING)
    assert EVERYTHING.stages == ["random_resized_crop", "random_horizontal_flip", "rand_augment", "range_augment",
                                 "random_erase"]
    assert all(len(row) == 5 for row in rows)
    flips = [row[1] for row in rows]
    assert 0 < sum(flips) < len(rows)
    tones = [row[3] for row in rows]
    assert 0 < sum(t is None for t in tones) < len(rows)
    erases = [row[4] for row in rows]
    assert 0 < sum(e is None for e in erases) < len(rows)
    ops = {op for row in rows for op, _ in row[2]}
    assert ops == set(range(len(OP_NAMES)))
    assert stored_numbers(EVERYTHING) == 4 + 1 + 6 + 2 + 4


def test_datacompdr_preset_stores_exactly_the_released_layout():
    """DataCompDR's param_aug entry: [[top, left, h, w], [[op_index, signed magnitude], ...]]."""
    _, params = sample(images(), PRESETS["datacompdr"], 32, torch.Generator().manual_seed(0))
    for row in compress(params, PRESETS["datacompdr"]):
        crop, ops = row
        assert len(crop) == 4 and all(isinstance(v, int) for v in crop)
        assert len(ops) == 2 and all(isinstance(op, int) and isinstance(m, float) for op, m in ops)
        top, left, height, width = crop
        assert 0 <= top and top + height <= 64 and 0 <= left and left + width <= 64 and min(height, width) >= 1


def test_crop_areas_follow_the_scale_range():
    policy = AugmentPolicy(crop_scale=(0.25, 0.5), crop_ratio=(1.0, 1.0))
    _, params = sample(images(batch=400, size=64), policy, 16, torch.Generator().manual_seed(0))
    area = (params.crop[:, 2] * params.crop[:, 3]).double() / 64**2
    assert 0.22 < area.min() and area.max() < 0.53  # integer boxes round the edges


def test_tone_change_is_sized_to_its_target_psnr():
    policy = AugmentPolicy(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), tone_psnr=(30.0, 30.0))
    plain = AugmentPolicy(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))
    source = images(batch=64)
    toned, _ = sample(source, policy, 64, torch.Generator().manual_seed(0))
    untouched, _ = sample(source, plain, 64, torch.Generator().manual_seed(0))
    mse = (toned - untouched).pow(2).mean(dim=(1, 2, 3))
    psnr = -10 * torch.log10(mse)
    assert 27.0 < psnr.median() < 33.0  # rounding to 8 bits and clipping move it a little


def test_fast_crop_matches_roi_align_where_both_supersample_alike():
    source = images(batch=32)
    boxes = torch.tensor([[4.0, 6.0, 60.0, 58.0]]).repeat(32, 1)  # every box needs the same factor (2)
    params = CropParams(boxes, torch.arange(32) % 2 == 0)
    assert torch.allclose(crop_resize(source, params, 24), apply_crop(source, params, 24), atol=1e-5)


def test_mismatched_stored_parameters_are_an_error():
    with pytest.raises(ValueError, match="do not match the stages"):
        decompress([[[0, 0, 8, 8]]], PRESETS["datacompdr"])


def test_translations_scale_with_the_replay_size():
    policy = AugmentPolicy(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), randaugment_ops=1)
    params = decompress([[[0, 0, 64, 64], [[OP_NAMES.index("TranslateX"), 16.0]]]], policy)
    source = images(batch=1)
    big = apply(source, params, policy, 64, reference_size=64)
    small = apply(source, params, policy, 32, reference_size=64)
    # a quarter of the width either way: the first 16 (8) columns are fill
    assert math.isclose(float(big[0, :, :, :16].mean()), 128 / 255, abs_tol=1e-6)
    assert math.isclose(float(small[0, :, :, :8].mean()), 128 / 255, abs_tol=1e-6)
    assert not math.isclose(float(small[0, :, :, 8:10].mean()), 128 / 255, abs_tol=1e-3)
