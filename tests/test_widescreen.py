"""Widescreen from footage to clip: ingest cropping to an aspect, non-square models, renders that fill 16:9."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_frame_store
from media import write_video
from render_media import compose, decode_clip, vjgan

from vjgan.cli import main
from vjgan.footage.geometry import plan_frame
from vjgan.footage.store import FrameStore
from vjgan.render.layout import Layout, plan_tiling
from vjgan.run.checkpoint import load_generator
from vjgan.run.snapshots import SnapshotStore
from vjgan.sizes import format_size, size_for_aspect

RED, BLUE, GREEN = (230, 30, 30), (30, 30, 230), (30, 230, 30)
WIDE_HW = (48, 80)  # what --size 48 --aspect 16:9 makes: 48 * 16/9 = 85.3, rounded to a multiple of 16


def marked_frames(width: int, height: int, n_frames: int = 3) -> np.ndarray:
    """Grey frames with a red marker in the middle: (n, height, width, 3) uint8."""
    frames = np.full((n_frames, height, width, 3), 128, np.uint8)
    frames[:, height * 3 // 8 : height * 5 // 8, width * 3 // 8 : width * 5 // 8] = RED
    return frames


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    """A 16:9 and a portrait source ingested with --aspect 16:9, and a tiny modern model trained on them."""
    root = tmp_path_factory.mktemp("wide")
    (root / "footage" / "wide").mkdir(parents=True)
    landscape = marked_frames(320, 180)
    landscape[:, :, :32] = landscape[:, :, -32:] = BLUE  # the sides: a 16:9 source keeps them
    portrait = marked_frames(180, 320)
    portrait[:, :96] = portrait[:, -96:] = GREEN  # top and bottom: cut when the middle band is kept
    write_video(root / "footage" / "wide" / "1-landscape.mp4", landscape, options={"crf": "0"})
    write_video(root / "footage" / "wide" / "2-portrait.mp4", portrait, options={"crf": "0"})
    assert main(["ingest", str(root / "footage"), "--out", str(root / "data"), "--size", "48", "--aspect", "16:9"]) == 0
    train = [
        "train",
        str(root / "data" / "wide"),
        "--run",
        str(root / "run"),
        "--preset",
        "modern",
        "--width",
        "4",
        "--z-dim",
        "8",
        "--batch-size",
        "8",
        "--images",
        "64",
        "--snapshot-every",
        "32",
        "--checkpoint-every",
        "64",
        "--log-every",
        "4",
        "--noise-bank",
        "9",
        "--device",
        "cpu",
        "--precision",
        "fp32",
    ]
    assert main(train) == 0  # no --size: the model takes the store's
    return root


# -- geometry (pure) ---------------------------------------------------------------------------------


def test_aspect_gives_the_width_rounded_to_the_model_size_step():
    assert size_for_aspect(96, (16, 9)) == (96, 176)  # 170.7 -> 176
    assert size_for_aspect(128, (16, 9)) == (128, 224)
    assert size_for_aspect(144, (16, 9)) == (144, 256)  # exact
    assert size_for_aspect(96, (9, 16)) == (96, 48)  # portrait
    assert size_for_aspect(100, (1, 1)) == (100, 100)  # square stays exactly square
    assert (format_size((96, 176)), format_size((96, 96))) == ("176x96", "96")


def test_center_crop_to_16_9_covers_the_size_and_cuts_the_middle_out():
    four_three = plan_frame((640, 480), (96, 176), "center")  # narrower than 16:9: the width binds
    assert four_three.scale_wh == (176, 132) and (four_three.crop_top, four_three.crop_left) == (18, 0)
    portrait = plan_frame((1080, 1920), (96, 176), "center")
    assert portrait.scale_wh == (176, 313) and (portrait.crop_top, portrait.crop_left) == (108, 0)
    turned = plan_frame((1920, 1080), (96, 176), "center", rotation_degrees=90)  # shown as portrait
    assert turned.scale_wh == (313, 176) and (turned.crop_top, turned.crop_left) == (108, 0)
    squashed = plan_frame((1080, 1920), (96, 176), "full")
    assert squashed.scale_wh == (176, 96) and (squashed.crop_top, squashed.crop_left) == (0, 0)


# -- ingest ------------------------------------------------------------------------------------------


def test_ingest_with_aspect_stores_16_9_frames_keeping_the_middle(wide):
    store = FrameStore.open(wide / "data" / "wide")
    assert store.size_px == WIDE_HW
    assert json.loads((store.path / "manifest.json").read_text())["size_px"] == list(WIDE_HW)
    frames = store.all_frames().astype(int)  # (6, 48, 80, 3)
    landscape, portrait = (frames[shard.start : shard.start + shard.frames] for shard in store.shards)
    assert landscape.shape == portrait.shape == (3, *WIDE_HW, 3)
    for kept in (landscape, portrait):
        assert np.abs(kept[:, 20:28, 36:44] - RED).max() < 40  # the marker in the middle survives
    assert np.abs(landscape[:, 8:40, :4] - BLUE).max() < 40 and np.abs(landscape[:, 8:40, -4:] - BLUE).max() < 40
    greenness = portrait[..., 1] - np.maximum(portrait[..., 0], portrait[..., 2])
    assert greenness.max() < 20  # the portrait's top and bottom are cut away whole


def test_a_store_of_another_aspect_is_refused(wide, capsys):
    code, err = vjgan(capsys, "ingest", wide / "footage", "--out", wide / "data", "--size", "48")
    assert code == 1 and "made with --size 80x48" in err and "not --size 48" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--aspect", "16x9"], "give width:height in whole numbers, e.g. 16:9"),
        (["--aspect", "16:0"], "give width:height"),
        (["--size", "96:160"], "width x height (176x96: 176 wide, 96 high)"),
    ],
)
def test_bad_aspect_or_size_text_is_refused_teaching_the_form(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit:
        main(["ingest", str(tmp_path), "--out", str(tmp_path / "data"), *args])
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_size_with_both_sides_and_aspect_is_refused(tmp_path, capsys):
    code, err = vjgan(capsys, "ingest", tmp_path, "--out", tmp_path / "data", "--size", "176x96", "--aspect", "16:9")
    assert code == 1 and "--size 176x96 already sets the shape" in err and "--size 96 --aspect 16:9" in err


# -- train ---------------------------------------------------------------------------------------------


def test_train_makes_a_model_of_the_store_s_shape(wide):
    generator, config = load_generator(wide / "run")
    assert config.model.size_px == WIDE_HW and config.model.arch == "modern"
    assert generator(torch.zeros(2, config.model.z_dim)).shape == (2, 3, *WIDE_HW)
    snapshots = SnapshotStore.open(wide / "run")
    assert snapshots.size_px == WIDE_HW and snapshots.frames().shape == (len(snapshots), 9, *WIDE_HW, 3)


def test_a_model_size_not_a_multiple_of_16_is_refused(tmp_path, capsys):
    store = write_frame_store(tmp_path / "data" / "odd", np.full((4, 36, 64, 3), 128, np.uint8))
    code, err = vjgan(capsys, "train", store, "--run", tmp_path / "run")
    assert code == 1 and str(store) in err and "multiple of 16" in err and "--aspect 16:9" in err
    code, err = vjgan(capsys, "train", "--dry-run", "--size", "100x48", "--device", "cpu")
    assert code == 1 and "model size 100x48" in err and "multiple of 16" in err


# -- render --------------------------------------------------------------------------------------------


def assert_filled(path: Path, frame_size_wh: tuple[int, int]) -> None:
    """Decoded frames of the right size whose outermost rows and columns show picture, not a black bar."""
    frames = decode_clip(path).frames.astype(float)  # (N, H, W, 3)
    width, height = frame_size_wh
    assert frames.shape[1:] == (height, width, 3)
    edges = [frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]]  # (N, W or H, 3) each
    assert min(edge.mean(axis=(1, 2)).min() for edge in edges) > 40  # the young model's grey is ~125, a bar ~0


def test_single_loop_fills_a_16_9_frame(wide, tmp_path, capsys):
    out = tmp_path / "loop.mp4"
    code, _ = vjgan(
        capsys, "render", "loop", wide / "run", "--size", "320x180", "--layout", "single", "--seconds", "0.5", "--out", out
    )
    assert code == 0
    assert_filled(out, (320, 180))


@pytest.mark.parametrize(
    "layout", [["--layout", "grid", "--rows", "3", "--cols", "3"], ["--layout", "wall"]], ids=["grid", "wall"]
)
def test_progress_grid_and_wall_of_non_square_samples_fill_a_16_9_frame(wide, tmp_path, capsys, layout):
    out = tmp_path / "progress.mp4"
    assert vjgan(capsys, "render", "progress", wide / "run", "--size", "320x180", *layout, "--out", out)[0] == 0
    assert_filled(out, (320, 180))


def test_grids_of_16_9_samples_cover_1080p_and_grids_of_squares_keep_their_bars():
    grid = Layout("grid", rows=3, cols=3)
    for sample_hw in [(96, 176), (96, 160), (128, 224)]:
        tiling = plan_tiling(grid, 9, sample_hw, (1920, 1080))
        assert 3 * tiling.cell_hw[1] >= 1920 and 3 * tiling.cell_hw[0] >= 1080
        assert 3 * tiling.cell_hw[1] <= 1920 * 1.08 and 3 * tiling.cell_hw[0] <= 1080 * 1.08  # only a thin cut
    squares = plan_tiling(Layout("grid", rows=3, cols=4), 12, (96, 96), (1920, 1080))
    assert squares.cell_hw == (360, 360)  # whole samples, bars left and right, as before
    samples = torch.rand(9, 3, 48, 80, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    frame = compose(samples, grid, (320, 180), "bilinear")  # (3, 180, 320)
    assert frame.shape == (3, 180, 320) and frame.min() > 0.2  # no black anywhere
