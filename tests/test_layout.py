"""Layouts and upscaling: where samples land in the frame, filter maths against Pillow, conversions."""

import numpy as np
import pytest
import torch
from PIL import Image
from render_media import compose

from vjgan.errors import RenderError
from vjgan.render.layout import (
    FILTERS,
    Layout,
    blend_schedule,
    compose_batch,
    expand_snapshots,
    from_uint8_hwc,
    plan_tiling,
    resample_weights,
    to_uint8_hwc,
)


def random_samples(*shape, seed=0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_single_fills_frame_with_the_centre_of_the_sample_as_crisp_blocks():
    samples = random_samples(2, 5, 3, 16, 16)  # (T, n, 3, h, w)
    frames = compose_batch(samples, Layout("single", sample=3), (64, 32), "nearest")  # W=64, H=32: x4
    assert frames.shape == (2, 3, 32, 64)
    centre = samples[:, 3, :, 4:12, :]  # a 2:1 frame shows the middle 8 of 16 rows
    assert torch.equal(frames, centre.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1))


def test_grid_shows_whole_samples_in_order_centred_on_black():
    samples = random_samples(1, 4, 3, 8, 8)
    frame = compose(samples[0], Layout("grid", rows=2, cols=2), (48, 32), "nearest")  # cells 16x16
    assert frame.shape == (3, 32, 48)
    assert torch.all(frame[:, :, :8] == -1) and torch.all(frame[:, :, 40:] == -1)  # bars left and right
    for index in range(4):
        row, col = divmod(index, 2)
        tile = frame[:, row * 16 : row * 16 + 16, 8 + col * 16 : 8 + col * 16 + 16]
        assert torch.equal(tile, samples[0, index].repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1))


def test_wall_covers_the_whole_frame_with_as_many_tiles_as_the_bank_allows():
    samples = torch.rand(1, 64, 3, 12, 12) * 0.5 + 0.25  # all values well above black
    tiling = plan_tiling(Layout("wall"), 64, (12, 12), (160, 90))
    rows, cols = tiling.rows, tiling.cols
    assert 48 <= rows * cols <= 64
    assert cols * tiling.cell_hw[1] >= 160 and rows * tiling.cell_hw[0] >= 90
    frame = compose(samples[0], Layout("wall"), (160, 90), "bilinear")
    assert frame.shape == (3, 90, 160)
    assert frame.min() > 0.2  # no black bars anywhere


@pytest.mark.parametrize("layout", [Layout("single"), Layout("grid", rows=2, cols=3), Layout("wall")])
@pytest.mark.parametrize("filter", FILTERS)
def test_every_layout_and_filter_gives_the_requested_frame_size(layout, filter):
    frames = compose_batch(random_samples(3, 6, 3, 24, 20), layout, (70, 40), filter)
    assert frames.shape == (3, 3, 40, 70) and frames.dtype == torch.float32


@pytest.mark.parametrize(
    "filter, pillow_filter", [("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC), ("lanczos", Image.LANCZOS)]
)
@pytest.mark.parametrize("size_wh", [(75, 50), (41, 17), (12, 8)])  # up, mixed, down (antialiased)
def test_filters_match_pillow_resize(filter, pillow_filter, size_wh):
    image = np.random.default_rng(1).random((20, 30)).astype(np.float32)
    expected = np.asarray(Image.fromarray(image, mode="F").resize(size_wh, pillow_filter))
    ours = resample_weights(20, size_wh[1], filter, 20.0) @ image @ resample_weights(30, size_wh[0], filter, 30.0).T
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_layouts_needing_more_samples_than_the_bank_are_refused():
    samples = random_samples(1, 4, 3, 8, 8)
    with pytest.raises(RenderError, match="only 4 samples"):
        compose_batch(samples, Layout("grid", rows=3, cols=3), (64, 64))
    with pytest.raises(RenderError, match="sample 4"):
        compose_batch(samples, Layout("single", sample=4), (64, 64))
    with pytest.raises(RenderError, match="does not fit"):
        compose_batch(random_samples(1, 40, 3, 8, 8), Layout("grid", rows=40, cols=1), (64, 32))


def test_unknown_layout_or_filter_is_refused():
    with pytest.raises(RenderError, match="layout 'mosaic'"):
        Layout("mosaic")
    with pytest.raises(RenderError, match="filter 'sinc'"):
        compose_batch(random_samples(1, 1, 3, 8, 8), Layout("single"), (16, 16), "sinc")


def test_uint8_conversions_round_trip_and_clip():
    every_value = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    assert np.array_equal(to_uint8_hwc(from_uint8_hwc(every_value)), every_value)
    beyond = torch.tensor([-3.0, -1.0, 1.0, 2.5]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert to_uint8_hwc(beyond)[0, 0, :, 0].tolist() == [0, 0, 255, 255]
    assert to_uint8_hwc(beyond).shape == (1, 1, 4, 3)


def test_snapshots_are_held_or_crossfaded_for_k_frames_each():
    snapshots = torch.tensor([0.0, 1.0, 2.0]).view(3, 1)
    held = expand_snapshots(snapshots, 4, crossfade=False).flatten().tolist()
    faded = expand_snapshots(snapshots, 4, crossfade=True).flatten().tolist()
    assert held == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert faded == [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2, 2, 2]


def test_blend_schedule_for_a_frame_range_is_that_slice_of_the_whole():
    whole = blend_schedule(7, 5, crossfade=True)
    part = blend_schedule(7, 5, crossfade=True, start=12, stop=23)
    for whole_values, part_values in zip(whole, part):
        assert np.array_equal(whole_values[12:23], part_values)


@pytest.mark.parametrize(
    "sample_hw, frame_size_wh, bank, expected",
    [
        ((96, 96), (1920, 1080), 64, (3, 5)),  # squares in 16:9: 15 cells, 1.67:1 (3x4 would be 1.33:1)
        ((96, 176), (1920, 1080), 64, (3, 3)),  # 16:9 samples in 16:9 frames
        ((96, 96), (1080, 1920), 64, (5, 3)),  # portrait output
        ((64, 64), (512, 512), 64, (3, 3)),  # a square frame: 9 and 16 both fit exactly; 9 is nearer 12
        ((96, 96), (1920, 1080), 4, (2, 2)),  # a bank too small for 9 cells: the best of what fits
    ],
)
def test_a_grid_without_rows_and_cols_takes_the_shape_that_best_fills_the_frame(sample_hw, frame_size_wh, bank, expected):
    fitted = Layout("grid").fitted(bank, sample_hw, frame_size_wh)
    assert (fitted.rows, fitted.cols) == expected
    assert Layout("grid", rows=2).fitted(bank, (96, 96), (1920, 1080)).cols == 4  # the other side follows
    assert Layout("grid", rows=2, cols=7).fitted(bank, sample_hw, frame_size_wh) == Layout("grid", rows=2, cols=7)
