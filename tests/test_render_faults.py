"""Clips, generate and the demo under real faults: a file-size limit (the kernel's EFBIG, as a full disk's
ENOSPC) and SIGKILL at random instants, in children forked from this process. Nothing is patched: every
run is `vjgan.cli.main` or a demo stage in a real process, and every clip is decoded back."""

import hashlib
import json
import shutil
import signal
import time
from pathlib import Path

import av
import numpy as np
import pytest
from faults import assert_one_line_error, cli_call, fork_and_kill, fork_call, fork_vjgan
from PIL import Image
from render_media import read_png_frames

from vjgan.demo import PROFILES, DemoPaths, Stages, make_footage, make_music, write_index
from vjgan.errors import VjganError
from vjgan.files import PARTIAL_SUFFIX
from vjgan.render.clips import LOOP_RECORD

TOO_LARGE = "File too large"  # strerror(EFBIG), what the kernel answers a write past RLIMIT_FSIZE
SIZE_WH = (64, 64)  # every clip here: tiny, so that dozens of renders and kills take seconds
SECONDS = 0.5  # 15 frames at 30 fps
N_FRAMES = 15
KILLS = 30  # random instants per killed command


def clip_args(seconds: float) -> tuple[str, ...]:
    return ("--seconds", str(seconds), "--size", "{}x{}".format(*SIZE_WH))


CLIP_ARGS = clip_args(SECONDS)
# the clip the random kills aim at: 15 frames are written in ~15 ms, a window that a 2-core machine's
# scheduling (the parent polls every 2 ms) can miss 15 times running; 16x the frames widen it ~7x
KILLED_N_FRAMES = 16 * N_FRAMES
KILLED_CLIP_ARGS = clip_args(16 * SECONDS)
# (output name, extra arguments): every writer a clip can go through
OUTPUTS = {
    "h264": ("clip.mp4", ()),
    "prores": ("clip.mov", ("--codec", "prores")),
    "hap": ("clip.mov", ("--codec", "hap")),  # imageio-ffmpeg's FFmpeg, on a pipe
    "dxv": ("clip.mov", ("--codec", "dxv")),
    "gif": ("clip.gif", ()),
    "png": ("frames", ()),  # a folder of PNG frames
}


def decoded_size(path: Path) -> tuple[int, tuple[int, int]]:
    """(frames, (width, height)) of a whole clip, every frame decoded (PyAV), or of a folder of PNG frames."""
    if path.is_dir():
        frames = read_png_frames(path)
        return len(frames), (frames.shape[2], frames.shape[1])
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        n_frames = sum(1 for _ in container.decode(stream))
        return n_frames, (stream.codec_context.width, stream.codec_context.height)


def largest_file_bytes(path: Path) -> int:
    return max(file.stat().st_size for file in path.rglob("*")) if path.is_dir() else path.stat().st_size


def digest(path: Path) -> str:
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return hashlib.sha256(b"".join(file.read_bytes() for file in files)).hexdigest()


def partials(folder: Path) -> list[Path]:
    return list(folder.rglob(f"*{PARTIAL_SUFFIX}"))


@pytest.mark.parametrize("kind", OUTPUTS)
def test_a_clip_stopped_by_a_size_limit_is_one_line_and_earlier_clips_and_a_rerun_are_whole(tiny_run, tmp_path, kind):
    name, codec = OUTPUTS[kind]
    earlier, clip = tmp_path / f"earlier-{name}", tmp_path / "out" / name
    render = ("render", "loop", tiny_run, *CLIP_ARGS, *codec)
    assert fork_vjgan(*render, "--out", earlier).returncode == 0
    earlier_digest = digest(earlier)
    limit_bytes = largest_file_bytes(earlier) // 2  # the same clip (same seed) cannot fit

    result = fork_vjgan(*render, "--out", clip, fsize_limit_bytes=limit_bytes)
    named = str(clip / "frame_000000.png") if kind == "png" else str(clip)
    assert_one_line_error(result, named, TOO_LARGE)
    assert not partials(tmp_path)  # nothing a re-run would trip over
    assert kind == "png" or not clip.exists()  # no half clip under the final name
    assert digest(earlier) == earlier_digest  # what was finished before is intact

    assert fork_vjgan(*render, "--out", clip).returncode == 0
    assert decoded_size(clip)[0] == N_FRAMES
    assert not partials(tmp_path)


def test_ffmpeg_killed_by_the_size_limit_signal_still_names_the_clip_and_the_cause(tiny_run, tmp_path):
    """A process that does not ignore SIGXFSZ (Python does) hands its default to FFmpeg: the kernel kills
    FFmpeg at the limit without a word, and the user still reads "File too large"."""
    clip = tmp_path / "clip.mov"
    render = cli_call("render", "loop", tiny_run, *CLIP_ARGS, "--codec", "hap", "--out", clip)

    def render_with_default_sigxfsz() -> int:
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        return render()

    line = assert_one_line_error(fork_call(render_with_default_sigxfsz, fsize_limit_bytes=4096), str(clip), TOO_LARGE)
    assert "signal" not in line and not partials(tmp_path) and not clip.exists()


def test_generate_stopped_by_a_size_limit_renders_only_the_missing_loops_when_run_again(tiny_run, tmp_path):
    folder = tmp_path / "loops"
    generate = ("generate", tiny_run, *CLIP_ARGS, "--at-once", "1", "--out", folder)
    assert fork_vjgan(*generate, "--count", "2").returncode == 0
    finished = {path.name: path.stat().st_mtime_ns for path in folder.glob("loop-*.mp4")}
    assert len(finished) == 2

    result = fork_vjgan(*generate, "--count", "4", fsize_limit_bytes=largest_file_bytes(folder / "loop-0.mp4") // 2)
    assert_one_line_error(result, str(folder / "loop-2.mp4"), TOO_LARGE)
    assert not partials(folder) and not (folder / "loop-2.mp4").exists()
    assert {path.name: path.stat().st_mtime_ns for path in folder.glob("loop-*.mp4")} == finished  # untouched

    result = fork_vjgan(*generate, "--count", "4")
    assert result.returncode == 0 and "reused 2 loops" in result.stdout, result.stdout
    for seed in range(4):
        assert decoded_size(folder / f"loop-{seed}.mp4") == (N_FRAMES, SIZE_WH)
    assert all(folder.joinpath(name).stat().st_mtime_ns == mtime for name, mtime in finished.items())
    with Image.open(folder / "contact_sheet.png") as sheet:  # 2 x 2 thumbnails, the reused loops' too
        thumbs = np.asarray(sheet.convert("RGB"))[: SIZE_WH[1]].reshape(SIZE_WH[1], 2, SIZE_WH[0], 3)
        assert sheet.width == 2 * SIZE_WH[0] and min(thumbs[:, 0].std(), thumbs[:, 1].std()) > 1


def test_generate_with_other_settings_makes_every_loop_again(tiny_run, tmp_path):
    folder = tmp_path / "loops"
    generate = ("generate", tiny_run, "--size", "{}x{}".format(*SIZE_WH), "--count", "2", "--out", folder)
    assert fork_vjgan(*generate, "--seconds", str(SECONDS)).returncode == 0
    result = fork_vjgan(*generate, "--seconds", str(2 * SECONDS))
    assert result.returncode == 0 and "reused" not in result.stdout
    assert decoded_size(folder / "loop-1.mp4")[0] == 2 * N_FRAMES


def assert_whole_or_absent(path: Path, n_frames: int = N_FRAMES) -> bool:
    """The file under a final name is a whole clip (every frame decodes), or there is none; whether there is one."""
    if not path.exists():
        return False
    assert decoded_size(path) == (n_frames, SIZE_WH), path
    return True


@pytest.mark.parametrize("kind", ["h264", "hap"])
def test_a_render_killed_at_random_instants_never_leaves_a_half_clip(tiny_run, tmp_path, kind):
    name, codec = OUTPUTS[kind]
    clip = tmp_path / name
    partial = tmp_path / (name + PARTIAL_SUFFIX)
    render = cli_call("render", "loop", tiny_run, *KILLED_CLIP_ARGS, *codec, "--out", clip)
    writing = writing_seconds(render, partial)  # how long this machine takes: the window the kills aim into
    rng = np.random.default_rng(12)
    outcomes = {"killed writing": 0, "finished": 0}
    for _ in range(KILLS // 2):
        clip.unlink(missing_ok=True)  # each kill starts a clip from nothing (the rerun below finished one)
        # a random instant of the writing: from the moment the clip's .partial appears (the model loaded)
        code = fork_and_kill(render, seconds=rng.uniform(0.0, writing), start_when=partial.exists)
        assert code in (None, 0)
        finished = assert_whole_or_absent(clip, KILLED_N_FRAMES)
        outcomes["finished" if finished else "killed writing"] += 1
        if finished:  # the render ended before its kill: narrow the window (this machine's load varies)
            writing *= 0.8
        assert [path.name for path in tmp_path.iterdir() if path != clip] in ([], [partial.name])  # nothing else left
        assert fork_call(render).returncode == 0  # the next run replaces the leftover and finishes
        assert assert_whole_or_absent(clip, KILLED_N_FRAMES) and not partial.exists()
    assert outcomes["killed writing"] >= 1, outcomes


def writing_seconds(render, partial: Path) -> float:
    """Seconds a whole render holds its `.partial` (from the model loaded to the rename), timed once: a fixed
    window would let a fast machine finish every clip before any kill."""
    appeared = []

    def has_appeared() -> bool:
        if partial.exists() and not appeared:
            appeared.append(time.monotonic())
        return bool(appeared)

    assert fork_and_kill(render, seconds=240, start_when=has_appeared) == 0
    return time.monotonic() - appeared[0]


def test_generate_killed_at_random_instants_keeps_finished_loops_and_finishes_when_run_again(tiny_run, tmp_path):
    folder = tmp_path / "loops"
    loops = [folder / f"loop-{seed}.mp4" for seed in range(3)]
    generate = cli_call("generate", tiny_run, *CLIP_ARGS, "--count", "3", "--at-once", "1", "--out", folder)
    started = time.monotonic()
    assert fork_call(generate).returncode == 0
    full_seconds = time.monotonic() - started
    rng = np.random.default_rng(7)
    kills_per_round, loops_at_kills = 3, []
    for _ in range(KILLS // kills_per_round):
        shutil.rmtree(folder)
        for _ in range(kills_per_round):  # each run carries on from what the killed one before it finished
            fork_and_kill(generate, seconds=rng.uniform(0.0, full_seconds))
            loops_at_kills.append(sum(assert_whole_or_absent(loop) for loop in loops))
            assert all(assert_whole_or_absent(folder / name) for name in recorded(folder))  # only whole loops listed
            if (folder / "contact_sheet.png").exists():
                with Image.open(folder / "contact_sheet.png") as sheet:
                    sheet.load()  # a whole PNG
        reusable = len(recorded(folder))
        result = fork_call(generate)
        assert result.returncode == 0, result.stdout
        assert (f"reused {reusable} loops" in result.stdout) if reusable else ("reused" not in result.stdout), result.stdout
        assert all(assert_whole_or_absent(loop) for loop in loops)
        assert (folder / "contact_sheet.png").is_file() and not partials(folder)
    assert {0, 1}.issubset(loops_at_kills) or {0, 2}.issubset(loops_at_kills), loops_at_kills  # killed early and midway


def recorded(folder: Path) -> list[str]:
    """The loops generate's record lists as finished (none without a record)."""
    record = folder / LOOP_RECORD
    return json.loads(record.read_text())["finished"] if record.exists() else []


def reporting_errors(function):
    """`function` as the CLI runs a command: a `VjganError` is printed as its one line, exit code 1."""

    def call() -> int:
        try:
            function()
        except VjganError as error:
            print(f"vjgan: error: {error}")
            return 1
        return 0

    return call


SMOKE = PROFILES["smoke"]


def test_demo_footage_stopped_by_a_size_limit_keeps_the_finished_clips(tmp_path):
    out = tmp_path / "demo"
    # the smoke profile's particles clip is ~16 KB, its geometry clip ~43 KB: the limit stops the second
    result = fork_vjgan("demo", "--smoke", "--out", out, "--device", "cpu", fsize_limit_bytes=30_000)
    line = assert_one_line_error(result, TOO_LARGE, "geometry")
    assert str(out / "footage" / "geometry") in line and not partials(out)
    particles = sorted((out / "footage" / "particles").glob("*.mp4"))
    assert len(particles) == SMOKE.synth.clips_per_genre and decoded_size(particles[0])[0] == SMOKE.synth.n_frames
    made = particles[0].stat().st_mtime_ns

    stages = Stages(total=1)
    assert fork_call(reporting_errors(lambda: make_footage(DemoPaths(out), SMOKE, stages))).returncode == 0
    assert particles[0].stat().st_mtime_ns == made  # kept, not made again
    assert all(decoded_size(path)[0] == SMOKE.synth.n_frames for path in (out / "footage").rglob("*.mp4"))
    assert (out / "footage" / ".complete").is_file() and not partials(out)


def test_demo_music_and_index_stopped_by_a_size_limit_are_one_line_and_made_by_the_rerun(tiny_run, tmp_path):
    paths = DemoPaths(tmp_path / "demo")
    shutil.copytree(tiny_run, paths.run("gradients"))
    shutil.copytree(tiny_run.parent / "data" / "gradients", paths.store("gradients"))
    stages = Stages(total=1)

    result = fork_call(
        reporting_errors(lambda: make_music(paths, SMOKE, stages)), fsize_limit_bytes=50_000
    )  # the track is ~176 KB
    assert_one_line_error(result, str(paths.music), TOO_LARGE)
    assert not paths.music.exists() and not partials(paths.root)
    assert fork_call(reporting_errors(lambda: make_music(paths, SMOKE, stages))).returncode == 0
    with av.open(str(paths.music)) as track:
        assert sum(frame.samples for frame in track.decode(audio=0)) == round(SMOKE.music_seconds * 44_100)

    index = reporting_errors(lambda: write_index(paths, SMOKE, SMOKE.render, ("gradients",), stages))
    result = fork_call(index, fsize_limit_bytes=40_000)  # the contact sheet is larger, the run's charts smaller
    assert_one_line_error(result, str(paths.contact_sheet), TOO_LARGE)
    assert not paths.contact_sheet.exists() and not partials(paths.root)
    assert fork_call(index).returncode == 0
    for made in (paths.contact_sheet, paths.curves):
        with Image.open(made) as image:
            image.load()
    assert "contact_sheet.png" in paths.readme.read_text() and not partials(paths.root)
