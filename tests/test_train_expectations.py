"""`vjgan train`'s expected time to good quality: one line once the first log window has measured images/s."""

import dataclasses
import json

from test_train import store, tiny_config  # noqa: F401 (fixture)

from vjgan.model.networks import ModelConfig
from vjgan.train.config import preset
from vjgan.train.expectations import IMAGES_TO_GOOD_QUALITY, GoodQuality, duration, measured_key, quality_eta_line
from vjgan.train.loop import train


def modern(size_px: int, width: int = 16, **changes):
    base = preset("modern")
    return dataclasses.replace(base, model=dataclasses.replace(base.model, size_px=(size_px, size_px), width=width), **changes)


def test_train_prints_the_time_to_good_quality_at_the_rate_of_its_first_log_window(store, tmp_path, capsys):  # noqa: F811
    model = ModelConfig(size_px=(32, 32), width=16, arch="modern", spectral_norm=True, latent="normal")
    measured = dict(loss="hinge", batch_size=64, lr=2e-4)  # the bench's settings, so the table has a figure for it
    config = tiny_config(store, model=model, images_total=640, log_every_steps=1, **measured)  # 10 log windows
    train(config, tmp_path / "run")
    lines = [line for line in capsys.readouterr().err.splitlines() if "good quality" in line]
    first = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[0])
    good, rate = IMAGES_TO_GOOD_QUALITY[measured_key(config)], first["images_per_second"]
    assert first["images_seen"] == 64 and lines == [quality_eta_line(config, 64, rate)]  # once, from the first record
    assert lines[0].startswith(f"at {rate:.0f} img/s, a `modern` net at 32x32, width 16 reaches good quality after ")
    assert f"{duration((good.images - 64) / rate)} from now; beyond this run's schedule" in lines[0]
    assert lines[0].endswith(f"(schedule: 640 images, {duration(576 / rate)} to go)")


def test_the_time_to_good_quality_is_the_images_left_over_the_rate():
    table = {measured_key(modern(32)): GoodQuality(300_000)}
    line = quality_eta_line(modern(32), 0, 300_000 / 720, table)  # 12 minutes from the start
    assert "reaches good quality after 300,000 images: ~12m from now (schedule: 5,000,000 images, 3h 20m to go)" in line
    assert "already passed" in quality_eta_line(modern(32), 300_000, 400.0, table)
    assert "beyond this run's schedule" in quality_eta_line(modern(32, images_total=100_000), 0, 400.0, table)


def test_genres_that_differ_give_a_range_and_a_run_still_sharpening_a_lower_bound():
    table = {measured_key(modern(32)): GoodQuality(384_000, reached=False, fastest_images=240_000)}
    line = quality_eta_line(modern(32), 0, 400.0, table)
    assert "after 240,000 to more than 384,000 images (by footage): ~10m to over 16m from now" in line
    assert "after 240,000 to more than 384,000 images (by footage): over 1m from now" in quality_eta_line(
        modern(32), 360_000, 400.0, table
    )
    assert "still sharpening" in quality_eta_line(modern(32), 384_000, 400.0, table)


def test_a_model_the_bench_has_not_measured_gets_no_estimate():
    line = quality_eta_line(preset("seed96"), 0, 400.0)
    assert line == (
        "at 400 img/s: no estimate of the time to good quality for a `seed96` net at 96x96, width 64 "
        "(schedule: 5,000,000 images, 3h 28m to go)"
    )
    assert "no estimate" in quality_eta_line(modern(32, width=32), 0, 400.0)
    assert "no estimate" in quality_eta_line(modern(32, lr=4e-4), 0, 400.0)  # measured at the preset's 2e-4 only


def test_modern2_at_its_own_size_is_quoted_from_its_bench_runs():
    line = quality_eta_line(preset("modern2"), 0, 400.0)  # 96x96, width 16, relativistic, batch 32, lr 4e-4
    assert "a `modern` net at 96x96, width 16 reaches good quality after 96,000 to more than 136,000 images (by footage)" in line
    assert "~4m to over 5m from now" in line
    assert "no estimate" in quality_eta_line(modern(96, loss="relativistic"), 0, 400.0)  # modern2's loss alone
