"""Pillow line charts: the PNGs a run's curves are drawn in."""

import math

import numpy as np
from PIL import Image

from vjgan.plot import COLOURS, line_chart_png, nice_ticks


def _pixels_of(image: Image.Image, hex_colour: str) -> int:
    rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return int((np.asarray(image) == rgb).all(axis=-1).sum())


def test_chart_draws_each_series_in_its_own_colour(tmp_path):
    path = line_chart_png(
        tmp_path / "loss.png",
        {"D": ([0, 100, 200], [1.4, 0.9, 0.7]), "G": ([0, 100, 200], [0.7, 1.5, 2.2])},
        "losses",
        "images seen",
        "loss",
        size_wh=(400, 300),
    )
    image = Image.open(path)
    assert image.size == (400, 300) and image.format == "PNG"
    assert _pixels_of(image, COLOURS[0]) > 50 and _pixels_of(image, COLOURS[1]) > 50
    assert not (tmp_path / "loss.png.partial").exists()


def test_chart_survives_diverged_values_and_empty_series(tmp_path):
    log_chart = line_chart_png(
        tmp_path / "a.png", {"swd": ([0, 1, 2, 3], [5.0, math.nan, 0.0, math.inf])}, "t", "x", "y", log_y=True
    )
    empty = line_chart_png(tmp_path / "b.png", {"swd": ([], [])}, "t", "x", "y")
    assert Image.open(log_chart).size == Image.open(empty).size
    assert _pixels_of(Image.open(empty), COLOURS[0]) == 0


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    ticks = nice_ticks(0.013, 0.087)
    assert ticks[0] >= 0.013 and ticks[-1] <= 0.087 and len(ticks) >= 3
    assert all(abs(t / 0.01 - round(t / 0.01)) < 1e-6 for t in ticks)
