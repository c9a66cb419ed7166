"""`vjgan train`'s expected time to good quality: one line once the first log window has measured images/s."""

import dataclasses
import json
import time

from rich.progress import Progress
from test_train import store, tiny_config  # noqa: F401 (fixture)

from vjgan.model.networks import ModelConfig
from vjgan.train.config import preset
from vjgan.train.expectations import IMAGES_TO_GOOD_QUALITY, GoodQuality, duration, measured_key, quality_eta_line
from vjgan.train.loop import train
from vjgan.train.session import SessionRemainingColumn, StopRequest


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


def test_a_session_with_a_time_budget_plans_with_its_deadline(store, tmp_path, capsys):  # noqa: F811
    model = ModelConfig(size_px=(32, 32), width=16, arch="modern", spectral_norm=True, latent="normal")
    measured = dict(loss="hinge", batch_size=64, lr=2e-4)
    config = tiny_config(store, model=model, images_total=10**9, minutes=0.02, log_every_steps=1, **measured)
    train(config, tmp_path / "run")  # stops at its 1.2 s budget, a billion images short
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "good quality" in line]
    assert "from now; beyond this session's time budget (time budget: " in line
    assert line.endswith(" images at this rate)") and "schedule:" not in line


def test_the_time_to_good_quality_is_the_images_left_over_the_rate():
    table = {measured_key(modern(32)): GoodQuality(300_000)}
    line = quality_eta_line(modern(32), 0, 300_000 / 720, table=table)  # 12 minutes from the start
    assert "reaches good quality after 300,000 images: ~12m from now (schedule: 5,000,000 images, 3h 20m to go)" in line
    assert "already passed" in quality_eta_line(modern(32), 300_000, 400.0, table=table)
    assert "beyond this run's schedule" in quality_eta_line(modern(32, images_total=100_000), 0, 400.0, table=table)


def test_a_time_budget_that_ends_first_is_the_session_end_the_line_plans_with():
    table = {measured_key(modern(32)): GoodQuality(300_000)}
    short = quality_eta_line(modern(32), 0, 400.0, seconds_left=60.0, table=table)  # --minutes 1: 24,000 images
    assert short.endswith("~12m from now; beyond this session's time budget (time budget: 1m to go, ~24,000 images at this rate)")
    long = quality_eta_line(modern(32), 0, 400.0, seconds_left=3600.0, table=table)  # an hour: 1,440,000 images
    assert long.endswith("~12m from now (time budget: 1h 00m to go, ~1,440,000 images at this rate)")
    schedule_first = quality_eta_line(modern(32, images_total=100_000), 0, 400.0, seconds_left=3600.0, table=table)
    assert schedule_first.endswith("beyond this run's schedule (schedule: 100,000 images, 4m to go)")


def test_the_bar_counts_down_to_the_deadline_where_that_comes_before_the_schedule_ends():
    clock = [0.0]  # the bar's own clock, which its rate is measured on
    stop = StopRequest(minutes=1.5, session_start=time.monotonic())
    column = SessionRemainingColumn(stop.seconds_left)
    progress = Progress(column, get_time=lambda: clock[0])
    task = progress.add_task("train", total=100)
    assert column.render(progress.tasks[task]).plain in ("0:01:30", "0:01:29")  # no rate yet: the deadline is all there is
    for clock[0], completed in ((5.0, 25), (10.0, 50)):  # 5 images/s
        progress.update(task, completed=completed)
    assert column.render(progress.tasks[task]).plain == "0:00:10"  # 50 images left: the schedule ends first
    stop.deadline = time.monotonic() + 5.0
    assert column.render(progress.tasks[task]).plain in ("0:00:05", "0:00:04")  # the deadline comes first
    assert SessionRemainingColumn(lambda: None).render(progress.tasks[task]).plain == "0:00:10"


def test_genres_that_differ_give_a_range_and_a_run_still_sharpening_a_lower_bound():
    table = {measured_key(modern(32)): GoodQuality(384_000, reached=False, fastest_images=240_000)}
    line = quality_eta_line(modern(32), 0, 400.0, table=table)
    assert "after 240,000 to more than 384,000 images (by footage): ~10m to over 16m from now" in line
    assert "after 240,000 to more than 384,000 images (by footage): over 1m from now" in quality_eta_line(
        modern(32), 360_000, 400.0, table=table
    )
    assert "still sharpening" in quality_eta_line(modern(32), 384_000, 400.0, table=table)


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
