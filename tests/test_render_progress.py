"""`vjgan render progress`: the training video from a real run's snapshots, decoded back and checked."""

import shutil

import numpy as np
import pytest
from render_media import decode_clip, read_png_frames, vjgan

from vjgan.run.snapshots import SnapshotStore

# 2 x 4 cells of the 32 px samples fill 128 x 64 exactly: frames must equal the snapshots pixel for pixel.
GRID = ["--layout", "grid", "--rows", "2", "--cols", "4", "--size", "128x64", "--filter", "nearest"]


def grid_of(snapshot: np.ndarray) -> np.ndarray:
    """(bank, 32, 32, 3) -> the 2 x 4 grid of its first 8 samples, (64, 128, 3)."""
    return snapshot[:8].reshape(2, 4, 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(64, 128, 3)


@pytest.fixture(scope="module")
def snapshots(tiny_run) -> np.ndarray:
    return SnapshotStore.open(tiny_run).frames()  # (S, bank, 32, 32, 3)


def test_progress_shows_every_snapshot_once_in_training_order(tiny_run, snapshots, tmp_path, capsys):
    code, _ = vjgan(capsys, "render", "progress", tiny_run, *GRID, "--format", "png", "--out", tmp_path / "frames")
    assert code == 0
    frames = read_png_frames(tmp_path / "frames")
    assert len(frames) == len(snapshots) >= 5
    for frame, snapshot in zip(frames, snapshots):
        np.testing.assert_array_equal(frame, grid_of(snapshot))


def test_frames_per_snapshot_holds_each_snapshot(tiny_run, snapshots, tmp_path, capsys):
    vjgan(capsys, "render", "progress", tiny_run, *GRID, "--frames-per-snapshot", "3", "--format", "png", "--out", tmp_path / "f")
    frames = read_png_frames(tmp_path / "f")
    assert len(frames) == 3 * len(snapshots)
    for index, frame in enumerate(frames):
        np.testing.assert_array_equal(frame, grid_of(snapshots[index // 3]))


def test_crossfade_blends_towards_the_next_snapshot_and_holds_the_last(tiny_run, snapshots, tmp_path, capsys):
    vjgan(
        capsys,
        "render",
        "progress",
        tiny_run,
        *GRID,
        "--frames-per-snapshot",
        "4",
        "--crossfade",
        "--format",
        "png",
        "--out",
        tmp_path / "f",
    )
    frames = read_png_frames(tmp_path / "f").astype(float)
    assert len(frames) == 4 * len(snapshots)
    first, second = grid_of(snapshots[0]).astype(float), grid_of(snapshots[1]).astype(float)
    np.testing.assert_array_equal(frames[0], first)
    assert np.abs(frames[2] - (first + second) / 2).max() <= 1  # halfway, to the nearest level
    np.testing.assert_array_equal(frames[4], second)
    np.testing.assert_array_equal(frames[-1], grid_of(snapshots[-1]))


def test_from_and_to_pick_snapshots_by_images_seen(tiny_run, snapshots, tmp_path, capsys):
    seen = SnapshotStore.open(tiny_run).images_seen
    code, _ = vjgan(
        capsys,
        "render",
        "progress",
        tiny_run,
        *GRID,
        "--from",
        seen[2],
        "--to",
        seen[5] + 1,
        "--format",
        "png",
        "--out",
        tmp_path / "f",
    )
    assert code == 0
    frames = read_png_frames(tmp_path / "f")
    assert len(frames) == 4
    np.testing.assert_array_equal(frames[0], grid_of(snapshots[2]))
    np.testing.assert_array_equal(frames[-1], grid_of(snapshots[5]))


def test_single_layout_fills_the_frame_with_the_chosen_sample_as_crisp_pixels(tiny_run, snapshots, tmp_path, capsys):
    vjgan(
        capsys,
        "render",
        "progress",
        tiny_run,
        "--layout",
        "single",
        "--sample",
        "5",
        "--size",
        "64x32",
        "--filter",
        "nearest",
        "--format",
        "png",
        "--out",
        tmp_path / "f",
    )
    frame = read_png_frames(tmp_path / "f")[-1]
    centre = snapshots[-1, 5, 8:24]  # a 2:1 frame shows the middle half of the rows, each pixel as a 2x2 block
    np.testing.assert_array_equal(frame, centre.repeat(2, axis=0).repeat(2, axis=1))


def test_wall_covers_the_frame_with_many_samples(tiny_run, tmp_path, capsys):
    vjgan(
        capsys,
        "render",
        "progress",
        tiny_run,
        "--layout",
        "wall",
        "--size",
        "160x96",
        "--filter",
        "nearest",
        "--format",
        "png",
        "--out",
        tmp_path / "f",
    )
    frame = read_png_frames(tmp_path / "f")[-1].astype(int)
    assert frame[0].max() > 0 and frame[-1].max() > 0 and frame[:, 0].max() > 0 and frame[:, -1].max() > 0  # no black bars
    tiles = [frame[:32, left : left + 32] for left in range(0, 160, 32)]
    assert all(np.abs(a - b).mean() > 1 for a, b in zip(tiles, tiles[1:]))  # each tile another sample


def test_default_output_is_h264_mp4_in_the_run_at_30_fps_with_a_frames_per_second_bar(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    code, err = vjgan(capsys, "render", "progress", run, "--size", "320x180")
    assert code == 0 and "frames/s" in err
    clip = decode_clip(run / "clips" / "progress.mp4")
    n_snapshots = len(SnapshotStore.open(run))
    assert clip.frames.shape == (n_snapshots, 180, 320, 3)
    assert (clip.codec, clip.pix_fmt, clip.fps) == ("h264", "yuv420p", 30.0)
    assert clip.seconds == pytest.approx(n_snapshots / 30, abs=1e-6)
