"""DiffAugment: reproducible from a generator, per-sample, differentiable, reference strengths."""

import math

import pytest
import torch
import torch.nn.functional as F

from vjgan.errors import VjganError
from vjgan.model.augment import bicubic_axis_aligned, diff_augment, parse_policy

ALL = "color,translation,zoom,cutout"


def _images(n=6, size=16, seed=0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_same_generator_state_gives_identical_augmentation():
    images = _images()
    first = diff_augment(images, ALL, torch.Generator().manual_seed(3))
    again = diff_augment(images, ALL, torch.Generator().manual_seed(3))
    other = diff_augment(images, ALL, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_saved_generator_state_resumes_the_same_sequence():
    generator = torch.Generator().manual_seed(5)
    diff_augment(_images(), ALL, generator)
    state = generator.get_state()
    expected = diff_augment(_images(seed=1), ALL, generator)
    resumed = torch.Generator()
    resumed.set_state(state)
    assert torch.equal(diff_augment(_images(seed=1), ALL, resumed), expected)


@pytest.mark.parametrize("policy", ["color", "brightness", "saturation", "contrast", "translation", "zoom", "cutout", ALL])
def test_each_sample_gets_its_own_random_parameters(policy):
    one = _images(n=1)
    batch = one.expand(8, -1, -1, -1).contiguous()
    augmented = diff_augment(batch, policy, torch.Generator().manual_seed(0))
    distinct = {tuple(a.flatten().tolist()) for a in augmented}
    assert len(distinct) >= 4


@pytest.mark.parametrize("policy", ["color", "brightness", "saturation", "contrast", "translation", "zoom", "cutout", ALL])
def test_gradients_flow_through_the_augmentation(policy):
    images = _images().requires_grad_(True)
    diff_augment(images, policy, torch.Generator().manual_seed(0)).square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_translation_shifts_by_at_most_an_eighth_and_fills_with_zero():
    images = _images(n=10, size=32) * 0.5 + 0.5  # strictly positive, so the zero fill is visible
    moved = diff_augment(images, "translation", torch.Generator().manual_seed(1))
    for original, shifted in zip(images, moved):
        matches = []
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                expected = torch.zeros_like(original)
                src = original[:, max(dy, 0) : 32 + min(dy, 0), max(dx, 0) : 32 + min(dx, 0)]
                expected[:, max(-dy, 0) : 32 + min(-dy, 0), max(-dx, 0) : 32 + min(-dx, 0)] = src
                matches.append(torch.equal(shifted, expected))
        assert sum(matches) == 1  # exactly one shift within +-32/8 explains the output


def test_zoom_scales_each_image_about_its_centre_by_a_log_normal_factor():
    square = torch.full((1, 3, 64, 64), -1.0)
    square[..., 24:40, 24:40] = 1.0  # a 16 px white square in the middle of a black frame
    zoomed = diff_augment(square.expand(400, -1, -1, -1).contiguous(), "zoom", torch.Generator().manual_seed(3))
    white = zoomed[:, 0] > 0  # (400, 64, 64)
    side = white.sum(dim=(1, 2)).float().sqrt() / 16  # zoom factor of each image
    assert 0.15 < side.log2().std() < 0.25  # 2 ** N(0, 0.2)
    assert (side < 0.8).any() and (side > 1.25).any()  # it shrinks some frames and magnifies others
    rows, cols = white.any(2).float(), white.any(1).float()  # (400, 64) each
    positions = torch.arange(64.0)
    centre_y = (rows * positions).sum(1) / rows.sum(1)
    centre_x = (cols * positions).sum(1) / cols.sum(1)
    assert torch.allclose(centre_y, torch.tensor(31.5), atol=0.6) and torch.allclose(centre_x, torch.tensor(31.5), atol=0.6)


def test_zoom_keeps_the_contrast_of_fine_detail():
    # a bilinear zoom near 1x averages neighbouring pixels and keeps ~85% of this grating's contrast
    stripes = torch.cos(torch.arange(64.0) * (2 * math.pi / 4)).expand(200, 3, 64, 64).contiguous()  # 4 px period
    zoomed = diff_augment(stripes, "zoom", torch.Generator().manual_seed(2))
    centre = zoomed[:, :, 24:40, 24:40]  # read from inside the frame at every zoom factor drawn
    assert (centre.square().mean() / stripes.square().mean()).sqrt() > 0.95


def test_zoom_resamples_as_grid_samples_bicubic_mode_with_zero_fill():
    draws = torch.Generator().manual_seed(9)
    images = torch.rand(12, 3, 16, 24, generator=draws) * 2 - 1  # not square: each axis has its own matrix
    maps = torch.zeros(12, 2, 3)
    maps[:, 0, 0] = maps[:, 1, 1] = torch.exp2(torch.randn(12, generator=draws) * 0.5)  # shrink and magnify
    maps[:, :, 2] = torch.rand(12, 2, generator=draws) - 0.5  # shifts up to a quarter frame, off pixel centres
    grid = F.affine_grid(maps, [12, 3, 16, 24], align_corners=False)
    expected = F.grid_sample(images, grid, mode="bicubic", padding_mode="zeros", align_corners=False)
    torch.testing.assert_close(bicubic_axis_aligned(images, maps), expected, atol=1e-5, rtol=1e-5)


def test_a_shift_then_a_zoom_is_one_resampling_that_matches_them_done_in_turn():
    images = _images(n=40, size=32)
    together = diff_augment(images, "translation,zoom", torch.Generator().manual_seed(6))
    in_turn = torch.Generator().manual_seed(6)  # the same draws in the same order: shifts, then zoom factors
    apart = diff_augment(diff_augment(images, "translation", in_turn), "zoom", in_turn)
    centre = (slice(None), slice(None), slice(8, 24), slice(8, 24))  # where neither reads outside the frame
    torch.testing.assert_close(together[centre], apart[centre], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(
        together[centre], diff_augment(images, "zoom,translation", torch.Generator().manual_seed(6))[centre]
    )


def test_augmentation_is_done_in_float32_whatever_the_input():
    images = _images()
    from_bf16 = diff_augment(images.bfloat16(), ALL, torch.Generator().manual_seed(1))
    assert from_bf16.dtype == torch.float32
    torch.testing.assert_close(from_bf16, diff_augment(images.bfloat16().float(), ALL, torch.Generator().manual_seed(1)))


def test_cutout_zeroes_one_rectangle_of_at_most_half_each_side():
    ones = torch.ones(20, 3, 16, 16)
    cut = diff_augment(ones, "cutout", torch.Generator().manual_seed(2))
    for image in cut:
        holes = image[0] == 0
        assert torch.equal(image[0], image[1]) and holes.any()
        rows, cols = holes.any(1).nonzero().flatten(), holes.any(0).nonzero().flatten()
        assert holes[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # one solid rectangle
        assert len(rows) <= 8 and len(cols) <= 8
    full_holes = [(image[0] == 0).sum().item() == 64 for image in cut]
    assert any(full_holes)  # away from the border the rectangle is exactly half by half


def test_colour_changes_stay_within_the_reference_strengths():
    grey = torch.zeros(200, 3, 4, 4)
    shifted = diff_augment(grey, "color", torch.Generator().manual_seed(0))
    brightness = shifted.mean(dim=(1, 2, 3))  # saturation and contrast keep a flat grey's mean
    assert brightness.min() >= -0.5 and brightness.max() <= 0.5
    assert brightness.min() < -0.4 and brightness.max() > 0.4


def test_a_colour_strength_scales_every_factor_about_no_change():
    grey = torch.zeros(400, 3, 4, 4)
    brightness = diff_augment(grey, "color:0.5", torch.Generator().manual_seed(0)).mean(dim=(1, 2, 3))
    assert brightness.min() >= -0.25 and brightness.max() <= 0.25
    assert brightness.min() < -0.2 and brightness.max() > 0.2
    stripes = torch.zeros(400, 3, 4, 4)
    stripes[:, 0, ::2] = 0.5  # red stripes on black: red on a stripe minus red off it is (1/6 + sat / 3) x contrast
    for strength in [1.0, 0.5]:  # saturation within 1 +- strength, contrast within 1 +- strength / 2
        lowest = (1 / 6 + (1 - strength) / 3) * (1 - strength / 2)
        highest = (1 / 6 + (1 + strength) / 3) * (1 + strength / 2)
        stretched = diff_augment(stripes, f"color:{strength}", torch.Generator().manual_seed(1))
        spread = stretched[:, 0, 0, 0] - stretched[:, 0, 1, 0]  # (400,)
        assert spread.min() >= lowest - 1e-5 and spread.max() <= highest + 1e-5
        assert spread.min() < lowest + 0.1 * (highest - lowest) and spread.max() > highest - 0.1 * (highest - lowest)


def test_colour_is_brightness_then_saturation_then_contrast_and_each_changes_only_its_own_factor():
    images = _images(n=50)
    colour = diff_augment(images, "color:0.7", torch.Generator().manual_seed(2))
    stepwise = diff_augment(images, "brightness:0.7,saturation:0.7,contrast:0.7", torch.Generator().manual_seed(2))
    torch.testing.assert_close(colour, stepwise)  # one blend, the three steps' result up to rounding
    grey = images.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    assert torch.allclose(diff_augment(grey, "saturation", torch.Generator().manual_seed(0)), grey, atol=1e-6)
    contrasted = diff_augment(images, "contrast", torch.Generator().manual_seed(0))
    assert torch.allclose(contrasted.mean(dim=(1, 2, 3)), images.mean(dim=(1, 2, 3)), atol=1e-5)
    assert not torch.allclose(contrasted, images)
    brightened = diff_augment(images, "brightness", torch.Generator().manual_seed(0))
    shift = (brightened - images).flatten(1)  # (50, pixels): one shift per image
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6) and shift.abs().max() > 0.3


def test_a_translation_strength_scales_the_largest_shift():
    images = _images(n=200, size=32) * 0.5 + 0.5  # strictly positive: zeros mark what moved in
    for strength, largest in [(0.5, 2), (2.0, 8)]:
        moved = diff_augment(images, f"translation:{strength}", torch.Generator().manual_seed(2))
        empty_rows = (moved == 0).all(dim=(1, 3)).sum(dim=1)  # (200,) rows filled with zeros = |dy|
        assert empty_rows.max() == largest


def test_strength_one_is_the_reference_policy_and_bad_strengths_are_refused():
    images = _images()
    assert torch.equal(
        diff_augment(images, "color:1,translation:1.0,zoom:1,cutout:1", torch.Generator().manual_seed(4)),
        diff_augment(images, ALL, torch.Generator().manual_seed(4)),
    )
    assert parse_policy("color:0.5, cutout") == (("color", 0.5), ("cutout", 1.0))
    for bad in ["color:0", "color:-1", "color:3", "color:strong", "color:nan"]:
        with pytest.raises(VjganError, match=f"{bad}: give a strength above 0 and at most 2"):
            parse_policy(bad)


def test_augmentation_works_on_channels_last_images():
    images = _images()
    expected = diff_augment(images, ALL, torch.Generator().manual_seed(9))
    got = diff_augment(images.contiguous(memory_format=torch.channels_last), ALL, torch.Generator().manual_seed(9))
    torch.testing.assert_close(got, expected)


def test_empty_policy_leaves_images_alone_and_unknown_names_are_refused():
    images = _images()
    assert diff_augment(images, "", torch.Generator()) is images
    assert parse_policy(" color , cutout ") == (("color", 1.0), ("cutout", 1.0))
    with pytest.raises(VjganError, match="rotate"):
        parse_policy("color,rotate")


def test_the_trainings_autocast_leaves_augmentation_in_float32():
    images = _images(n=4, size=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # D's step augments inside it: maps and resampling stay float32
        augmented = diff_augment(images, ALL, torch.Generator().manual_seed(5))
    assert augmented.dtype == torch.float32
    torch.testing.assert_close(augmented, diff_augment(images, ALL, torch.Generator().manual_seed(5)))
