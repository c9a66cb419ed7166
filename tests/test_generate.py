"""`vjgan generate`: many loops in one batched pass, and their contact sheet."""

import shutil

import numpy as np
import pytest
from PIL import Image
from render_media import decode_clip, is_seamless, read_png_frames, vjgan

from vjgan.render.clips import CONTACT_LABEL_PX


def test_generate_writes_count_different_seamless_loops_and_a_contact_sheet(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    code, err = vjgan(
        capsys, "generate", run, "--count", "3", "--seconds", "1", "--size", "64x36", "--at-once", "2", "--seed", "10"
    )
    assert code == 0 and "frames/s" in err
    folder = run / "clips" / "loops-10-12"
    clips = [decode_clip(folder / f"loop-{seed}.mp4") for seed in (10, 11, 12)]
    for clip in clips:
        assert clip.frames.shape == (30, 36, 64, 3) and clip.seconds == pytest.approx(1.0, abs=1e-6)
        assert is_seamless(clip.frames, noise_levels=3)  # H.264 at 64x36 moves detailed pixels by a few levels
    firsts = [clip.frames[0].astype(int) for clip in clips]
    assert min(np.abs(a - b).mean() for a, b in [(firsts[0], firsts[1]), (firsts[0], firsts[2]), (firsts[1], firsts[2])]) > 2

    sheet = np.asarray(Image.open(folder / "contact_sheet.png").convert("RGB")).astype(int)
    cell_h = 36 + CONTACT_LABEL_PX
    assert sheet.shape == (2 * cell_h, 2 * 64, 3)  # 3 thumbnails, 2 x 2, at the clips' own width
    for index in range(3):
        top, left = (index // 2) * cell_h, (index % 2) * 64
        distances = [np.abs(sheet[top : top + 36, left : left + 64] - first).mean() for first in firsts]
        assert np.argmin(distances) == index and distances[index] < 12  # its own first frame, through 4:2:0 H.264


def test_each_generated_loop_is_the_loop_render_makes_with_its_seed(tiny_run, tmp_path, capsys):
    code, _ = vjgan(
        capsys,
        "generate",
        tiny_run,
        "--count",
        "2",
        "--seconds",
        "0.3",
        "--size",
        "64x36",
        "--seed",
        "5",
        "--format",
        "png",
        "--out",
        tmp_path / "batch",
    )
    assert code == 0
    vjgan(
        capsys,
        "render",
        "loop",
        tiny_run,
        "--seconds",
        "0.3",
        "--size",
        "64x36",
        "--seed",
        "6",
        "--format",
        "png",
        "--out",
        tmp_path / "one",
    )
    generated, rendered = read_png_frames(tmp_path / "batch" / "loop-6"), read_png_frames(tmp_path / "one")
    assert generated.shape == rendered.shape == (9, 36, 64, 3)
    assert np.abs(generated.astype(int) - rendered).max() <= 1  # batched with seed 5; a value may move one level
