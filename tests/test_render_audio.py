"""`vjgan render audio`: clips driven by synthesised music, decoded back (video, muxed AAC, effects on beats)."""

import av
import numpy as np
import pytest
from render_media import decode_clip, frame_changes, vjgan

from vjgan.cli import main
from vjgan.render.music import synth_music

BPM = 120  # a kick every 0.5 s: beats on frames 0, 15, 30, 45 at 30 fps
BEAT_FRAMES = [15, 30, 45]  # the beats after the first (a tracker needs one beat of context)


@pytest.fixture(scope="module")
def track(tmp_path_factory):
    return synth_music(tmp_path_factory.mktemp("music") / "track.mp3", seconds=2.0, bpm=BPM, seed=1)


@pytest.fixture(scope="module")
def plain_and_flashing(tiny_run, track, tmp_path_factory):
    """The same clip without effects and with the flash only."""
    folder = tmp_path_factory.mktemp("audio")
    for name, effects in [("plain", ""), ("flash", "flash")]:
        assert (
            main(
                [
                    "render",
                    "audio",
                    str(tiny_run),
                    "--audio",
                    str(track),
                    "--size",
                    "128x72",
                    "--effects",
                    effects,
                    "--out",
                    str(folder / f"{name}.mp4"),
                ]
            )
            == 0
        )
    return decode_clip(folder / "plain.mp4"), decode_clip(folder / "flash.mp4")


def track_seconds(path) -> float:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0)) / container.streams.audio[0].sample_rate


@pytest.mark.parametrize("suffix, seconds", [("mp3", 2.0), ("ogg", 1.75), ("flac", 1.3)])
def test_clip_lasts_exactly_the_track_with_the_track_muxed_as_aac(tiny_run, tmp_path, capsys, suffix, seconds):
    track = synth_music(tmp_path / f"track.{suffix}", seconds=seconds, bpm=BPM)
    code, _ = vjgan(capsys, "render", "audio", tiny_run, "--audio", track, "--size", "64x36", "--out", tmp_path / "clip.mp4")
    assert code == 0
    clip = decode_clip(tmp_path / "clip.mp4")
    frame_seconds = 1 / 30
    assert len(clip.frames) == round(track_seconds(track) * 30)
    assert clip.seconds == pytest.approx(len(clip.frames) / 30, abs=1e-6)
    assert clip.seconds == pytest.approx(track_seconds(track), abs=frame_seconds)
    assert clip.audio_codec == "aac" and clip.audio_seconds == pytest.approx(clip.seconds, abs=frame_seconds)


def test_flash_fires_on_the_beat_frames_and_fades_before_the_next(plain_and_flashing):
    plain, flashing = plain_and_flashing
    brightening = flashing.frames.astype(float).mean(axis=(1, 2, 3)) - plain.frames.astype(float).mean(axis=(1, 2, 3))
    for beat in BEAT_FRAMES:
        assert brightening[beat] > 50, f"no flash on beat frame {beat}"
        assert brightening[beat - 1] < 10, f"flash before beat frame {beat}"
        after = brightening[beat : beat + 10]
        lit = after[: int(np.argmax(after < 2))]  # the flash, up to the first frame it has gone out
        assert len(lit) >= 2 and np.all(np.diff(lit) < 0)  # lasts a few frames, decaying after the beat
        assert np.all(after[len(lit) :] < 10)  # and stays out until the next beat (the gate)
    assert np.all(brightening[: BEAT_FRAMES[0]] < 10)


def test_latent_motion_jumps_on_the_beat_frames(plain_and_flashing):
    plain, _ = plain_and_flashing
    changes = frame_changes(plain.frames)  # changes[i]: frame i -> i + 1
    into_beats = changes[[beat - 1 for beat in BEAT_FRAMES]]
    assert into_beats.min() > 3 * np.median(changes)


def test_intensity_scales_the_effects(tiny_run, track, plain_and_flashing, tmp_path, capsys):
    plain, flashing = plain_and_flashing
    vjgan(
        capsys,
        "render",
        "audio",
        tiny_run,
        "--audio",
        track,
        "--size",
        "128x72",
        "--effects",
        "flash",
        "--intensity",
        "0.3",
        "--out",
        tmp_path / "soft.mp4",
    )
    soft = decode_clip(tmp_path / "soft.mp4")
    beat = BEAT_FRAMES[0]
    full_flash = flashing.frames[beat].astype(float).mean() - plain.frames[beat].mean()
    soft_flash = soft.frames[beat].astype(float).mean() - plain.frames[beat].mean()
    assert 0.15 * full_flash < soft_flash < 0.5 * full_flash
