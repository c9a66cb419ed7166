"""`vjgan render loop` and `vjgan render walk`: latent clips from a real run's EMA generator, decoded back."""

import shutil
import subprocess
import sys

import av
import numpy as np
import pytest
from render_media import decode_clip, frame_changes, is_seamless, read_png_frames, vjgan

SMALL = ["--size", "128x72"]


@pytest.mark.parametrize(
    "kind, extra, seamless",
    [("loop", [], True), ("walk", ["--loop", "--keyframes", "3"], True), ("walk", ["--keyframes", "3"], False)],
    ids=["loop", "looping-walk", "plain-walk"],
)
def test_loops_are_seamless_and_a_plain_walk_is_not(tiny_run, tmp_path, capsys, kind, extra, seamless):
    """The jump from the last frame back to the first, against the frame-to-frame changes beside it, in
    lossless PNG frames (an H.264 seam is checked in test_generate); the plain walk, whose ends are two
    unrelated latents, shows the measure can fail."""
    code, _ = vjgan(
        capsys, "render", kind, tiny_run, *SMALL, "--seconds", "2", *extra, "--format", "png", "--out", tmp_path / "f"
    )
    assert code == 0
    frames = read_png_frames(tmp_path / "f")
    assert np.median(frame_changes(frames)) > 0.3  # the clip moves: the comparison is not between still frames
    assert is_seamless(frames) == seamless


def test_same_seed_repeats_the_clip_and_another_seed_changes_it(tiny_run, tmp_path, capsys):
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        vjgan(
            capsys,
            "render",
            "loop",
            tiny_run,
            "--size",
            "64x36",
            "--seconds",
            "0.5",
            "--seed",
            seed,
            "--format",
            "png",
            "--out",
            tmp_path / name,
        )
    a, b, c = (read_png_frames(tmp_path / name) for name in "abc")
    assert len(a) == 15
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 2


def test_walk_slows_into_each_keyframe(tiny_run, tmp_path, capsys):
    """3 keyframes over 31 frames with cubic easing: keyframes at frames 0, 15, 30, fastest halfway between."""
    vjgan(
        capsys,
        "render",
        "walk",
        tiny_run,
        "--size",
        "64x64",
        "--seconds",
        str(31 / 30),
        "--keyframes",
        "3",
        "--easing",
        "cubic",
        "--format",
        "png",
        "--out",
        tmp_path / "f",
    )
    changes = frame_changes(read_png_frames(tmp_path / "f"))  # change[i]: frame i -> i + 1
    assert len(changes) == 30
    at_keyframes = changes[[0, 14, 15, 29]]
    between = changes[[7, 22]]
    assert at_keyframes.max() < 0.5 * between.min()


def test_grid_tiles_follow_different_paths_and_the_first_is_the_single_clip(tiny_run, tmp_path, capsys):
    common = ["--seconds", "0.3", "--seed", "9", "--filter", "nearest", "--format", "png"]
    vjgan(
        capsys,
        "render",
        "loop",
        tiny_run,
        "--layout",
        "grid",
        "--rows",
        "1",
        "--cols",
        "2",
        "--size",
        "128x64",
        *common,
        "--out",
        tmp_path / "grid",
    )
    vjgan(capsys, "render", "loop", tiny_run, "--layout", "single", "--size", "64x64", *common, "--out", tmp_path / "single")
    grid, single = read_png_frames(tmp_path / "grid").astype(int), read_png_frames(tmp_path / "single").astype(int)
    left, right = grid[:, :, :64], grid[:, :, 64:]
    assert np.abs(left - right).mean() > 2
    assert np.abs(left - single).max() <= 1  # the same path; batching may move a value by one level


def test_prores_writes_mov_with_exact_frames_by_default_name(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    code, _ = vjgan(capsys, "render", "loop", run, "--size", "64x36", "--seconds", "0.5", "--seed", "2", "--codec", "prores")
    assert code == 0
    clip = decode_clip(run / "clips" / "loop-2.mov")
    assert (clip.codec, clip.pix_fmt, len(clip.frames)) == ("prores", "yuv422p10le", 15)
    assert clip.seconds == pytest.approx(0.5, abs=1e-6)


def test_gif_and_other_frame_rates_keep_exact_frame_counts(tiny_run, tmp_path, capsys):
    vjgan(capsys, "render", "walk", tiny_run, "--size", "64x36", "--seconds", "1", "--fps", "12", "--out", tmp_path / "walk.gif")
    vjgan(
        capsys, "render", "loop", tiny_run, "--size", "64x36", "--seconds", "1.5", "--fps", "24", "--out", tmp_path / "loop.mp4"
    )
    gif, mp4 = decode_clip(tmp_path / "walk.gif"), decode_clip(tmp_path / "loop.mp4")
    assert (len(gif.frames), gif.frames.shape[1:3]) == (12, (36, 64))
    assert (len(mp4.frames), mp4.fps) == (36, 24.0) and mp4.seconds == pytest.approx(1.5, abs=1e-6)


def test_long_1080p_render_streams_in_bounded_memory(tiny_run, tmp_path):
    """3 s of 1080p composed at full size (the GPU's path; the CPU's small canvas would hide a leak): 560 MB
    as uint8 frames, 2.2 GB as the float frames the pipeline makes. Measured in a fresh process, whose peak
    is its own: ~240 MiB of imports and ~650 MiB of chunks in flight and x264 state, the same for 1 s as
    for 3 s, so a render that held the clip would pass the bound by far."""
    script = (
        "import sys; from pathlib import Path; from vjgan.render import clips; "
        "from vjgan.render.pipeline import RenderConfig; "
        "config = RenderConfig(frame_size_wh=(1920, 1080), canvas_oversample=0); "
        "clips.render_loop(Path(sys.argv[1]), config, clips.LoopOptions(seconds=3), out=Path(sys.argv[2])); "
        # VmHWM is this process's own peak; ru_maxrss would carry the parent's peak over from fork + exec
        "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tiny_run), str(tmp_path / "long.mp4")], capture_output=True, text=True, check=True
    )
    peak_mib = int(result.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mib < 1150, f"peak memory {peak_mib:.0f} MiB"
    with av.open(str(tmp_path / "long.mp4")) as container:
        assert sum(1 for packet in container.demux(video=0) if packet.size) == 90


def test_truncation_tames_the_motion_towards_one_still_picture(tiny_run, tmp_path, capsys):
    """Latents scaled towards the centre move less; at 0 every frame is the centre's one picture."""
    motion = {}
    for psi in ("1", "0.4", "0"):
        code, _ = vjgan(
            capsys,
            "render",
            "loop",
            tiny_run,
            "--size",
            "64x64",
            "--seconds",
            "1",
            "--truncation",
            psi,
            "--format",
            "png",
            "--out",
            tmp_path / psi,
        )
        assert code == 0
        motion[psi] = np.median(frame_changes(read_png_frames(tmp_path / psi)))
    assert motion["0"] == 0 and 0 < motion["0.4"] < motion["1"]
    code, err = vjgan(capsys, "render", "loop", tiny_run, "--truncation", "3.5", "--out", tmp_path / "bad.mp4")
    assert code == 1 and "truncation 3.5: must be between 0 and 3" in err and not (tmp_path / "bad.mp4").exists()
