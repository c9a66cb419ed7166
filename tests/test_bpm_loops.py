"""Loops on the music's clock: `vjgan render loop --bpm/--audio --bars` and `vjgan generate --bpm --bars`,
rendered by the real generator of a trained run and decoded back."""

import numpy as np
import pytest
from render_media import decode_clip, frame_changes, is_seamless, read_png_frames, vjgan

from vjgan.cli import main
from vjgan.render.audio import beat_frames
from vjgan.render.clips import BeatOptions
from vjgan.render.latent import beat_loop_controls, beat_loop_path
from vjgan.render.music import synth_music, write_audio

FPS = 30.0


def loop_beat_frames(bpm: float, bars: int, fps: float = FPS) -> np.ndarray:
    """The frames a loop of `bars` 4/4 bars at `bpm` puts its beats on, as the renderer places them."""
    options = BeatOptions(bpm=bpm, bars=bars)
    controls = beat_loop_controls(options.n_frames(fps), options.n_beats, fps)
    return beat_frames(controls.beat_times_seconds, fps, controls.n_frames)


def cyclic_motion(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change into each frame from the one before it, frame 0's from the last: (N,)."""
    return frame_changes(np.concatenate([frames[-1:], frames]))


@pytest.mark.parametrize(
    "bpm, bars, beats_per_bar, fps",
    [(128, 4, 4, 30.0), (127, 4, 4, 30.0), (140, 2, 4, 30.0), (100, 3, 3, 24.0), (174, 8, 4, 25.0), (127, 1, 4, 59.94)],
)
def test_loop_lasts_its_bars_rounded_to_the_nearest_frame(bpm, bars, beats_per_bar, fps):
    options = BeatOptions(bpm=bpm, bars=bars, beats_per_bar=beats_per_bar)
    n_frames = options.n_frames(fps)
    assert n_frames == round(bars * beats_per_bar * 60 / bpm * fps)
    assert options.frame_bpm(fps) == pytest.approx(bars * beats_per_bar * 60 * fps / n_frames)
    beats = loop_beat_frames(bpm, bars, fps) if beats_per_bar == 4 else None
    if beats is not None:  # the beats divide the loop evenly from frame 0 (127 bpm: 14.17 frames a beat)
        assert beats[0] == 0 and len(beats) == bars * 4
        assert np.abs(beats - np.arange(bars * 4) * n_frames / (bars * 4)).max() <= 0.5 + 1e-9


def test_description_gives_frames_seconds_and_the_tempo_the_frames_really_hold():
    assert BeatOptions(bpm=128).describe(30.0) == "4 bars at 128 bpm = 225 frames = 7.500 s"
    assert BeatOptions(bpm=127, bars=1).describe(30.0) == (
        "1 bar at 127 bpm = 57 frames = 1.900 s at 30 fps: the loop's own tempo is 126.32 bpm "
        "(set the deck to it; at 127 bpm it drifts a frame every 3.3 loops)"
    )


@pytest.fixture(scope="module")
def beat_loops(tiny_run, tmp_path_factory):
    """4 bars at 127 bpm (227 frames, 14.17 a beat) as lossless PNG frames at the sample's own 32x32, plain
    and with a flash on the beat, and the same bars without kicks (--pulse 0)."""
    folder = tmp_path_factory.mktemp("beat_loops")
    common = ["render", "loop", tiny_run, "--bpm", "127", "--bars", "4", "--size", "32x32", "--seed", "4", "--format", "png"]
    for name, extra in [("kicks", []), ("flash", ["--effects", "flash", "--intensity", "1"]), ("plain", ["--pulse", "0"])]:
        assert main([str(arg) for arg in [*common, *extra, "--out", folder / name]]) == 0
    return {name: read_png_frames(folder / name) for name in ("kicks", "flash", "plain")}


def test_latent_kicks_land_exactly_on_the_beat_frames():
    """What the generator is given: the latent step into each beat's frame is the largest of its beat."""
    controls = beat_loop_controls(227, 16, FPS)
    path = beat_loop_path(controls, z_dim=16, seed=4)
    steps = (path - path.roll(1, dims=0)).norm(dim=1).numpy()  # (T,): into each frame, frame 0's from the last
    beats = beat_frames(controls.beat_times_seconds, FPS, 227)
    assert set(np.argsort(steps)[-16:]) == set(beats)
    assert steps[beats].min() > 1.5 * np.delete(steps, beats).max()


def test_motion_of_the_generated_frames_peaks_on_the_beats(beat_loops):
    """The change into each frame of the real generator's output peaks on the beats' frames (+-1): the
    largest jumps of the clip are all on beats, and nearly every beat's jump is the largest of its beat.
    (Every kick moves the latent as far; where the tiny test model renders a stretch of latent space as one
    flat image, a kick there shows little.)"""
    frames = beat_loops["kicks"]
    beats = loop_beat_frames(127, 4)
    assert len(frames) == 227 and beats[0] == 0
    motion = cyclic_motion(frames)

    def off_beat(frame: int) -> bool:
        return np.abs(beats - frame).min() > 1

    largest = np.argsort(motion)[-len(beats) // 2 :]
    assert not any(off_beat(frame) for frame in largest), f"jumps off the beat: {largest}"
    peaks_on_beat = 0
    for index, beat in enumerate(beats):
        previous_beat = beats[index - 1] if index else beats[-1] - len(frames)
        next_beat = beats[index + 1] if index + 1 < len(beats) else len(frames)
        nearer_this_beat = np.arange((previous_beat + beat) // 2 + 1, (beat + next_beat) // 2 + 1)
        peak = nearer_this_beat[np.argmax(motion[nearer_this_beat % len(frames)])]
        peaks_on_beat += abs(peak - beat) <= 1
    assert peaks_on_beat >= 0.75 * len(beats), f"{peaks_on_beat} of {len(beats)} beats peak on their frame"
    on_beat_motion = np.array([motion[[beat - 1, beat, (beat + 1) % len(frames)]].max() for beat in beats])
    assert np.median(on_beat_motion) > 3 * np.median(motion)


def test_without_kicks_the_bar_loop_is_an_ordinary_seamless_loop(beat_loops):
    frames = beat_loops["plain"]
    motion = cyclic_motion(frames)
    beats = loop_beat_frames(127, 4)
    on_beats = np.array([motion[[beat - 1, beat, (beat + 1) % len(frames)]].max() for beat in beats])
    kicked = cyclic_motion(beat_loops["kicks"])
    kicked_on_beats = np.array([kicked[[beat - 1, beat, (beat + 1) % len(frames)]].max() for beat in beats])
    assert np.median(motion) > 0.3  # it glides
    # no beat: the beats' frames move like the others (a window of 3 frames' largest vs single frames), and far
    # less than the kicked loop's beats (how much the tiny model's picture changes along the curve varies with
    # where the curve passes, and with the CPU it was trained on, so no fixed ratio to the median holds)
    assert np.median(on_beats) < 2 * np.median(motion) < np.median(kicked_on_beats)
    assert is_seamless(frames)


def test_flash_effect_fires_on_the_beats_and_fades_between(beat_loops):
    brightening = beat_loops["flash"].astype(float).mean(axis=(1, 2, 3)) - beat_loops["kicks"].astype(float).mean(axis=(1, 2, 3))
    beats = loop_beat_frames(127, 4)
    assert brightening[beats].min() > 40
    halfway = beats + np.diff(np.append(beats, 227)) // 2
    assert brightening[halfway].max() < 0.25 * brightening[beats].min()


def test_rendered_mp4_has_the_exact_frames_and_its_seam_is_one_more_beat(tiny_run, tmp_path, capsys):
    """2 bars at 128 bpm, H.264: the clip holds round(8 beats) frames and the jump from its last frame to its
    first (into beat 0) is like the jumps into the other beats, and so is the step after it."""
    code, err = vjgan(
        capsys, "render", "loop", tiny_run, "--bpm", "128", "--bars", "2", "--size", "64x36", "--out", tmp_path / "loop.mp4"
    )
    assert code == 0 and "2 bars at 128 bpm = 112 frames = 3.733 s" in err
    clip = decode_clip(tmp_path / "loop.mp4")
    assert len(clip.frames) == round(2 * 4 * 60 / 128 * FPS) == 112
    assert clip.seconds == pytest.approx(112 / FPS, abs=1e-6)
    motion = cyclic_motion(clip.frames)
    beats = loop_beat_frames(128, 2)
    into_other_beats, after_other_beats = motion[beats[1:]], motion[beats[1:] + 1]
    noise_levels = 3  # H.264 at 64x36 moves detailed pixels by a few levels
    assert 0.5 * into_other_beats.min() - noise_levels <= motion[0] <= 2 * into_other_beats.max() + noise_levels
    assert motion[1] <= 2 * after_other_beats.max() + noise_levels


def test_generate_makes_loops_of_the_same_bars(tiny_run, tmp_path, capsys):
    code, err = vjgan(
        capsys,
        "generate",
        tiny_run,
        "--count",
        "3",
        "--at-once",
        "2",
        "--bpm",
        "140",
        "--bars",
        "1",
        "--size",
        "64x36",
        "--out",
        tmp_path / "set",
    )
    assert code == 0 and "1 bar at 140 bpm = 51 frames = 1.700 s" in err
    counts = {len(decode_clip(tmp_path / "set" / f"loop-{seed}.mp4").frames) for seed in range(3)}
    assert counts == {round(4 * 60 / 140 * FPS)}
    assert (tmp_path / "set" / "contact_sheet.png").is_file()


def test_audio_track_gives_its_tempo(tiny_run, tmp_path, capsys):
    track = synth_music(tmp_path / "track.wav", seconds=8.0, bpm=128.0, seed=2)
    code, err = vjgan(
        capsys, "render", "loop", tiny_run, "--audio", track, "--bars", "1", "--size", "64x36", "--out", tmp_path / "loop.mp4"
    )
    assert code == 0
    tempo_line = next(line for line in err.splitlines() if line.startswith("tempo of"))
    assert float(tempo_line.split(": ")[1].split()[0]) == pytest.approx(128.0, abs=0.5)
    assert len(decode_clip(tmp_path / "loop.mp4").frames) == round(4 * 60 / 128 * FPS)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tracks")
    seconds = np.arange(3 * 22050) / 22050
    synth_music(folder / "music.wav", seconds=2.0)
    write_audio(folder / "tone.wav", (0.5 * np.sin(2 * np.pi * 440 * seconds)).astype(np.float32), 22050)
    return folder


BAD_FOR_BOTH = [
    (["--bpm", "128", "--audio", "{tracks}/music.wav"], "--bpm and --audio {tracks}/music.wav: give one tempo, not both"),
    (["--bpm", "128", "--seconds", "4"], "--seconds: a loop locked to a tempo lasts whole bars; give --bars instead"),
    (["--bars", "2"], "--bars: locks a loop to a tempo; give --bpm or --audio with it"),
    (["--effects", "zoom"], "--effects: locks a loop to a tempo"),
    (["--bpm", "10"], "bpm 10: must be between 20 and 400"),
    (["--bpm", "128", "--bars", "0"], "bars 0, beats per bar 4: both must be at least 1"),
    (["--bpm", "128", "--effects", "trails"], "effect trails: its feedback cannot wrap round a loop's seam"),
    (["--bpm", "400", "--fps", "12"], "bpm 400 at 12 fps: 1.80 frames a beat"),
]
BAD = [(command, args, message) for command in (["render", "loop"], ["generate"]) for args, message in BAD_FOR_BOTH] + [
    (
        ["render", "loop"],
        ["--audio", "{tracks}/tone.wav"],
        "{tracks}/tone.wav: no steady beat found to take a tempo from; give --bpm instead",
    ),
]


@pytest.mark.parametrize("command, args, message", BAD, ids=[" ".join(command + args) for command, args, _ in BAD])
def test_bad_tempo_options_are_one_line_errors(tiny_run, tracks, tmp_path, capsys, command, args, message):
    code, err = vjgan(capsys, *command, tiny_run, *[arg.format(tracks=tracks) for arg in args], "--out", tmp_path / "out")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("vjgan: error: ") and message.format(tracks=tracks) in lines[0]
    assert not (tmp_path / "out").exists()
