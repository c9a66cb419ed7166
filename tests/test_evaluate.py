"""Quality metrics: SWD over Laplacian-pyramid patches and diversity, pure maths on tiny frame sets."""

import numpy as np
import pytest
import torch

from media import gradient_frames
from vjgan.evaluate import (
    EvalConfig,
    SwdReference,
    _upsample,
    diversity,
    laplacian_pyramid,
    pyramid_levels_px,
    sliced_wasserstein,
)

FAST = EvalConfig(patches_per_image=32, projections=32, repeats=2)


def _frames(seed=0, n=24, size=32) -> np.ndarray:
    return gradient_frames(n, size, size, seed=seed)


def _noisy(frames: np.ndarray, sigma: float, seed=1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, frames.shape)
    return np.clip(frames + noise, 0, 255).astype(np.uint8)


def test_laplacian_pyramid_levels_add_back_to_the_image():
    images = torch.rand(2, 3, 32, 48)
    levels = laplacian_pyramid(images, 3)
    assert [tuple(level.shape[2:]) for level in levels] == [(32, 48), (16, 24), (8, 12)]
    rebuilt = levels[-1]
    for detail in reversed(levels[:-1]):
        rebuilt = detail + _upsample(rebuilt, detail.shape[2:])
    torch.testing.assert_close(rebuilt, images)


def test_pyramid_stops_at_sixteen_pixels():
    assert pyramid_levels_px((96, 96)) == [96, 48, 24]
    assert pyramid_levels_px((32, 32)) == [32, 16]
    assert pyramid_levels_px((144, 256)) == [144, 72, 36, 18]


def test_identical_sets_score_far_below_different_ones():
    real = _frames()
    same = sliced_wasserstein(real, real.copy(), FAST).mean_x1e3
    other = sliced_wasserstein(real, _frames(seed=7), FAST).mean_x1e3
    noise = sliced_wasserstein(real, np.random.default_rng(0).integers(0, 256, real.shape, dtype=np.uint8), FAST).mean_x1e3
    assert same * 2 < other < noise


def test_swd_grows_with_the_strength_of_a_perturbation():
    real = _frames()
    reference = SwdReference(real, FAST)
    distances = [reference.distance(_noisy(real, sigma)).mean_x1e3 for sigma in (0, 8, 24, 64)]
    assert distances == sorted(distances) and distances[-1] > 3 * distances[0]


def test_a_colour_cast_raises_the_coarse_level_distance():
    real = _frames()
    reference = SwdReference(real, FAST)
    cast = np.clip(real.astype(int) + [40, 0, -40], 0, 255).astype(np.uint8)
    clean, shifted = reference.distance(real), reference.distance(cast)
    assert shifted.per_level_x1e3[-1] > 3 * clean.per_level_x1e3[-1]  # the low-pass level sees colour
    assert shifted.mean_x1e3 > clean.mean_x1e3


def test_swd_is_reproducible_and_compares_sets_of_different_sizes():
    real, fake = _frames(n=40), _frames(seed=3, n=10)
    first = sliced_wasserstein(real, fake, FAST)
    assert first == sliced_wasserstein(real, fake, FAST)
    assert len(first.per_level_x1e3) == 2 and np.isfinite(first.mean_x1e3)
    with pytest.raises(ValueError, match="generated frames"):
        SwdReference(real, FAST).distance(_frames(size=48))


def test_diversity_is_zero_for_a_collapsed_set_and_grows_with_variety():
    frames = _frames(n=16)
    collapsed = np.repeat(frames[:1], 16, axis=0)
    assert diversity(collapsed) < 1e-6
    few_modes = np.concatenate([np.repeat(frames[:1], 8, axis=0), np.repeat(frames[8:9], 8, axis=0)])
    assert 0 < diversity(few_modes) < diversity(frames)
    with pytest.raises(ValueError):
        diversity(frames[:1])


def test_diversity_is_on_the_per_pixel_scale():
    black, white = np.zeros((1, 64, 64, 3), np.uint8), np.full((1, 64, 64, 3), 255, np.uint8)
    assert diversity(np.concatenate([black, white])) == pytest.approx(1.0)
