"""The shared render pipeline: where frames are composed (the canvas), and that the CPU's small canvas,
upscaled by the writer, gives the picture composing at full size gives."""

import dataclasses

import numpy as np
import pytest
import torch
from render_media import read_png_frames

from vjgan.errors import RenderError
from vjgan.render.clips import LoopOptions, render_loop
from vjgan.render.layout import Layout
from vjgan.render.pipeline import RenderConfig, plan_composition, tile_seeds

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # plan_composition only reads the device's type
HD = RenderConfig(frame_size_wh=(1920, 1080))


@pytest.mark.parametrize(
    "config, layout, device, canvas_wh",
    [
        (HD, Layout("single"), CPU, (384, 216)),  # 96 px shown 20x: 4 canvas px per sample px
        (dataclasses.replace(HD, filter="nearest"), Layout("single"), CPU, (96, 54)),  # crisp pixels: resampled once
        (HD, Layout("single"), CUDA, (1920, 1080)),  # the device composes at full size
        (dataclasses.replace(HD, canvas_oversample=0), Layout("single"), CPU, (1920, 1080)),
        (HD, Layout("grid", rows=3, cols=4), CPU, (1920, 1080)),  # cells 3.75x: already under 4x
    ],
    ids=["single", "single-nearest", "cuda", "oversample-0", "grid"],
)
def test_canvas_is_the_output_scaled_to_a_few_canvas_pixels_per_sample_pixel(config, layout, device, canvas_wh):
    assert plan_composition(config, layout, 64, (96, 96), device).canvas_size_wh == canvas_wh


def test_wall_shows_as_many_samples_as_cover_the_frame_within_the_bank():
    assert plan_composition(HD, Layout("wall"), 64, (96, 96), CPU).n_samples == 60  # 10 x 6 tiles
    assert plan_composition(HD, Layout("wall"), 8, (96, 96), CPU).n_samples <= 8


def test_small_canvas_upscaled_by_the_writer_looks_like_composing_at_full_size(tiny_run, tmp_path):
    """256x144 from 32 px samples: the CPU canvas is 128x72 and swscale doubles it."""
    config = RenderConfig(frame_size_wh=(256, 144), fmt="png", seed=1)
    assert plan_composition(config, Layout("single"), 16, (32, 32), CPU).canvas_size_wh == (128, 72)
    render_loop(tiny_run, config, LoopOptions(seconds=0.2), out=tmp_path / "canvas")
    render_loop(tiny_run, dataclasses.replace(config, canvas_oversample=0), LoopOptions(seconds=0.2), out=tmp_path / "full")
    canvas, full = read_png_frames(tmp_path / "canvas").astype(int), read_png_frames(tmp_path / "full").astype(int)
    assert canvas.shape == full.shape == (6, 144, 256, 3)
    assert np.abs(canvas - full).mean() < 2


def test_tile_seeds_are_stable_and_distinct():
    assert tile_seeds(7, 3)[:2] == tile_seeds(7, 2)  # a tile's path does not depend on how many tiles there are
    assert len(set(tile_seeds(7, 50) + tile_seeds(8, 50))) == 100


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"frame_size_wh": (1921, 1080)}, "must be even"),
        ({"fps": 0}, "frame rate"),
        ({"filter": "sharp"}, "filter 'sharp'"),
        ({"layout": "mosaic"}, "layout 'mosaic'"),
        ({"seed": -1}, "seed -1"),
        ({"precision": "fp8"}, "precision 'fp8'"),
    ],
)
def test_render_config_refuses_bad_settings(changes, reason):
    with pytest.raises(RenderError, match=reason):
        RenderConfig(**changes)
