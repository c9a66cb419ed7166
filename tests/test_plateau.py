"""The plateau rule on SWD curves: noise on a flat curve is not progress, a curve still falling is not a plateau."""

import numpy as np
import pytest

from vjgan.plateau import judge_curve, judge_run, plateau_line

IMAGES = [10_000 * i for i in range(1, 21)]  # 20 evaluations, every 10k images
SEEDS = range(100)


def _noisy(values: list[float], spread: float, seed: int) -> list[float]:
    """`values` each scaled by a uniform factor in [1 - spread, 1 + spread] (snapshot-to-snapshot SWD noise)."""
    return list(np.asarray(values) * np.random.default_rng(seed).uniform(1 - spread, 1 + spread, len(values)))


@pytest.mark.parametrize("spread", [0.25, 0.4])  # the demo's curves scatter by ~25%, the bench's 32 px ones by ~40%
def test_a_flat_noisy_curve_after_the_fall_is_called_a_plateau(spread):
    fall_then_flat = [400, 250, 160] + [100] * 17
    verdicts = [judge_curve(IMAGES, _noisy(fall_then_flat, spread, seed)) for seed in SEEDS]
    plateaus = [plateau for plateau in verdicts if plateau.verdict == "plateaued"]
    assert len(plateaus) >= 0.9 * len(SEEDS)  # a two-standard-error margin: ~5% of pure noise reads as a fall
    since = [plateau.since_images_seen for plateau in plateaus]
    assert min(since) >= 30_000 and 40_000 <= np.median(since) <= 50_000  # after the fall, mostly right after it
    runs = [
        judge_run(IMAGES, _noisy(fall_then_flat, spread, seed), _noisy(fall_then_flat, spread, 1000 + seed), 32) for seed in SEEDS
    ]
    assert sum(run.verdict == "plateaued" for run in runs) >= 0.85 * len(SEEDS)  # two curves judged: ~1 in 10 reads as falling


@pytest.mark.parametrize("spread", [0.05, 0.25])
def test_a_curve_that_keeps_falling_is_not_called_a_plateau(spread):
    power_law = [1000 * (images / 10_000) ** -0.7 for images in IMAGES]  # 38% lower per doubling, never flat
    verdicts = [judge_curve(IMAGES, _noisy(power_law, spread, seed)).verdict for seed in SEEDS]
    assert verdicts.count("falling") >= 0.9 * len(SEEDS) and "unknown" not in verdicts
    exact = judge_curve(IMAGES, power_law)
    assert exact.verdict == "falling" and exact.drop_per_doubling == pytest.approx(0.38, abs=0.05)


def test_a_slow_fall_counts_where_the_points_agree_and_the_margin_widens_with_their_scatter():
    slow = [1000 * (images / 10_000) ** -0.3 for images in IMAGES]  # 19% per doubling
    tight, wide = judge_curve(IMAGES, _noisy(slow, 0.02, 0)), judge_curve(IMAGES, _noisy(slow, 0.6, 0))
    assert tight.verdict == "falling" and tight.noise_margin == 0.10
    assert wide.noise_margin > 0.3


def test_plateau_starts_where_the_smoothed_curve_comes_within_ten_percent_of_the_level():
    images = [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000]
    swd = [2000, 300, 140, 104, 100, 60, 112, 104, 100]  # 60: one lucky snapshot, ignored by the medians
    plateau = judge_curve(images, swd)
    assert (plateau.verdict, plateau.since_images_seen, plateau.level_swd_x1e3) == ("plateaued", 3000, 102)
    assert (plateau.best_swd_x1e3, plateau.best_images_seen) == (60, 5000)
    line = plateau_line(plateau, "try more footage")
    assert line.startswith("SWD has plateaued since ~3,000 images (median of the last half 102.0, best 60.0 at 5,000 images)")
    assert line.endswith("try more footage")


def test_too_few_evaluations_give_no_verdict_and_the_untrained_point_does_not_count():
    plateau = judge_curve([0, 1000, 2000, 3000, 4000, 5000], [900, 100, 100, 100, 100, 100])
    assert plateau.verdict == "unknown" and plateau.drop_per_doubling is None
    assert "--every 1" in plateau_line(plateau, "")


def test_points_are_judged_in_order_of_images_seen():
    images, swd = [4000, 1000, 3000, 2000, 5000, 6000], [90, 400, 180, 300, 60, 40]
    assert judge_curve(images, swd) == judge_curve(sorted(images), [400, 300, 180, 90, 60, 40])
    falling = judge_curve(images, swd)
    assert plateau_line(falling, "").startswith("SWD still falling: ~75% lower per doubling of the images (best 40.0 at 6,000")


def test_an_uneven_curve_is_refused():
    with pytest.raises(ValueError, match="as many SWD values"):
        judge_curve([1000, 2000], [1.0])


def test_a_run_is_still_falling_while_its_finest_level_sharpens_under_a_flat_mean():
    flat_mean = [400, 250, 160] + [100] * 17
    sharpening = [
        1000 * (images / 10_000) ** -0.6 for images in IMAGES
    ]  # the finest level: 34% per doubling (33% between medians)
    plateau = judge_run(IMAGES, flat_mean, sharpening, 96)
    assert plateau.verdict == "falling" and plateau.finest_verdict == "falling" and plateau.drop_per_doubling == 0
    assert plateau_line(plateau, "").startswith("SWD still falling at 96 px: ~33% lower per doubling of the images")


def test_a_run_has_plateaued_since_the_later_of_its_mean_and_its_finest_level():
    mean = [400, 250, 160] + [100] * 17
    finest = [400, 300, 250, 200, 160, 130] + [100] * 14
    plateau = judge_run(IMAGES, mean, finest, 32)
    assert plateau.verdict == "plateaued" and plateau.since_images_seen == 70_000 == judge_curve(IMAGES, finest).since_images_seen
    assert judge_curve(IMAGES, mean).since_images_seen == 40_000
