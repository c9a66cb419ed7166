"""Audio: decoding real files of every common format, analysis on the video frame clock, the synth track."""

import numpy as np
import pytest
from media import gradient_frames, write_video

from vjgan.errors import AudioError
from vjgan.render import audio
from vjgan.render.audio import analyse, controls_from_samples, load_audio
from vjgan.render.music import render_music, synth_music, write_audio

SAMPLE_RATE_HZ = 22050
BPM = 120.0  # a kick every 0.5 s, from t = 0
SECONDS = 8.0  # intro (kick + hats) then groove (kick, snare, hats, bass)


@pytest.fixture(scope="module")
def music_track(tmp_path_factory):
    return synth_music(tmp_path_factory.mktemp("music") / "track.wav", seconds=SECONDS, bpm=BPM, seed=0)


@pytest.fixture(scope="module")
def music_samples(music_track):
    return load_audio(music_track, SAMPLE_RATE_HZ)[0]


@pytest.fixture(scope="module")
def music_controls(music_track):
    return analyse(music_track, fps=30.0)


def expected_beat_frames(fps: float) -> np.ndarray:
    return np.round(np.arange(0, SECONDS, 60.0 / BPM) * fps).astype(int)


def test_tempo_of_a_120_bpm_track_is_found(music_controls):
    assert music_controls.tempo_bpm == pytest.approx(BPM, abs=2.0)


@pytest.mark.parametrize("fps", [24.0, 30.0, 59.94])
def test_beats_land_on_the_frames_of_the_kicks(music_samples, fps):
    controls = controls_from_samples(music_samples, SAMPLE_RATE_HZ, fps)
    expected = expected_beat_frames(fps)
    found = np.round(controls.beat_times_seconds * fps).astype(int)
    assert len(found) >= len(expected) - 2  # the tracker may drop the first and last beat
    for frame in found:
        assert np.abs(expected - frame).min() <= 1
    # The beat curve is 1 on those frames and decays in between.
    assert np.all(controls.beat[found] == 1.0)
    between = found[:-1] + (found[1:] - found[:-1]) // 2
    assert np.all(controls.beat[between] < 0.5)


def test_onset_peaks_land_on_the_frames_of_the_kicks(music_controls):
    for frame in expected_beat_frames(30.0)[1:-1]:
        window = music_controls.onset[frame - 5 : frame + 6]
        peak = frame - 5 + int(np.argmax(window))
        assert abs(peak - frame) <= 1


def test_onsets_are_placed_to_a_hundredth_of_a_second(music_samples):
    # At 100 fps a frame is 10 ms: the flux's own lead (about 14 ms) must be corrected for this to hold.
    controls = controls_from_samples(music_samples, SAMPLE_RATE_HZ, 100.0)
    for frame in expected_beat_frames(100.0)[1:-1]:
        window = controls.onset[frame - 12 : frame + 13]  # +-120 ms: the off-beat hats are 250 ms away
        assert abs(frame - 12 + int(np.argmax(window)) - frame) <= 1


@pytest.mark.parametrize("fps", [24.0, 30.0, 59.94])
def test_curves_have_one_unit_range_value_per_video_frame(music_samples, fps):
    controls = controls_from_samples(music_samples[: int(2.51 * SAMPLE_RATE_HZ)], SAMPLE_RATE_HZ, fps)
    assert controls.n_frames == round(2.51 * fps)
    for name in ("rms", "onset", "beat", "low", "mid", "high"):
        curve = getattr(controls, name)
        assert curve.shape == (controls.n_frames,) and curve.dtype == np.float32, name
        assert curve.min() >= 0.0 and curve.max() <= 1.0, name
        assert curve.max() > 0.5, name  # normalised: each curve uses its range


def test_analysis_in_chunks_equals_one_pass(music_samples, monkeypatch):
    clip = music_samples[: 3 * SAMPLE_RATE_HZ]
    whole = controls_from_samples(clip, SAMPLE_RATE_HZ, 30.0)
    monkeypatch.setattr(audio, "CHUNK_FRAMES", 7)  # many chunk boundaries in 3 s
    chunked = controls_from_samples(clip, SAMPLE_RATE_HZ, 30.0)
    for name in ("rms", "onset", "beat", "low", "mid", "high"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), atol=1e-5, err_msg=name)
    np.testing.assert_allclose(chunked.beat_times_seconds, whole.beat_times_seconds)


def sections_track(path):
    """Quiet bass (0-2 s), loud bass (2-4 s), hi-hats only (4-6 s)."""
    t = np.arange(2 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    bass = np.sin(2 * np.pi * 60.0 * t)
    rng = np.random.default_rng(0)
    hats = np.diff(rng.standard_normal(len(t) + 2), n=2) * np.exp(-(t % 0.125) / 0.02) * 0.3
    return write_audio(path, np.concatenate([0.1 * bass, 0.8 * bass, hats]).astype(np.float32), SAMPLE_RATE_HZ)


@pytest.fixture(scope="module")
def sections_controls(tmp_path_factory):
    return analyse(sections_track(tmp_path_factory.mktemp("sections") / "sections.flac"), fps=30.0)


def section_mean(curve: np.ndarray, section: int) -> float:
    """Mean over a 2 s section at 30 fps, leaving out the 0.3 s around its edges."""
    return float(curve[section * 60 + 10 : section * 60 + 50].mean())


def test_louder_section_has_higher_rms(sections_controls):
    quiet, loud = section_mean(sections_controls.rms, 0), section_mean(sections_controls.rms, 1)
    assert loud > 0.8 and quiet < loud / 4


def test_bass_lights_the_low_band_and_hats_the_high_band(sections_controls):
    low, high = sections_controls.low, sections_controls.high
    assert section_mean(low, 1) > 0.8 and section_mean(low, 2) < 0.05
    assert section_mean(high, 2) > 0.3 and section_mean(high, 1) < 0.05


def click_track(seconds: float = 2.0) -> np.ndarray:
    samples = np.zeros(int(seconds * SAMPLE_RATE_HZ), np.float32)
    samples[[int(0.5 * SAMPLE_RATE_HZ), int(1.25 * SAMPLE_RATE_HZ)]] = 0.9
    return samples


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"])
def test_every_format_decodes_to_the_same_clock(tmp_path, suffix):
    path = write_audio(tmp_path / f"clicks{suffix}", click_track(), SAMPLE_RATE_HZ)
    samples, rate = load_audio(path, SAMPLE_RATE_HZ)
    assert rate == SAMPLE_RATE_HZ and samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) / rate == pytest.approx(2.0, abs=0.025)  # AAC may pad its last frame
    for click_seconds in (0.5, 1.25):  # encoder delays are undone: clicks stay within 1 ms
        near = slice(int((click_seconds - 0.05) * rate), int((click_seconds + 0.05) * rate))
        found_seconds = (near.start + int(np.argmax(np.abs(samples[near])))) / rate
        assert found_seconds == pytest.approx(click_seconds, abs=0.001)


def test_resampling_keeps_time(tmp_path):
    path = write_audio(tmp_path / "clicks-44k.wav", np.repeat(click_track(), 2), 2 * SAMPLE_RATE_HZ)
    samples, rate = load_audio(path, SAMPLE_RATE_HZ)
    assert len(samples) == pytest.approx(2.0 * SAMPLE_RATE_HZ, abs=2)
    assert np.argmax(np.abs(samples)) == pytest.approx(0.5 * SAMPLE_RATE_HZ, abs=3)


def test_damaged_packets_become_silence_and_the_track_keeps_its_time(tmp_path):
    path = write_audio(tmp_path / "damaged.m4a", render_music(3.0, 120.0, 0, SAMPLE_RATE_HZ), SAMPLE_RATE_HZ)
    intact, rate = load_audio(path, SAMPLE_RATE_HZ)
    data = bytearray(path.read_bytes())
    third = len(data) // 3  # inside the audio data; the index sits at the end of an .m4a
    data[third : third + 600] = np.random.default_rng(0).integers(0, 256, 600, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    damaged, _ = load_audio(path, SAMPLE_RATE_HZ)
    assert len(damaged) == len(intact)
    assert not np.allclose(damaged, intact, atol=1e-3)
    np.testing.assert_allclose(damaged[-rate:], intact[-rate:], atol=1e-3)  # the last second is untouched


def assert_one_line_error(error: pytest.ExceptionInfo, path, reason: str) -> None:
    message = str(error.value)
    assert "\n" not in message and str(path) in message and reason in message


def test_silent_track_is_refused(tmp_path):
    path = write_audio(tmp_path / "silence.wav", np.zeros(SAMPLE_RATE_HZ, np.float32), SAMPLE_RATE_HZ)
    with pytest.raises(AudioError) as error:
        analyse(path, fps=30.0)
    assert_one_line_error(error, path, "silent")


def test_text_file_named_mp3_is_refused(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("these are my set notes, not a song\n" * 20)
    with pytest.raises(AudioError) as error:
        analyse(path, fps=30.0)
    assert_one_line_error(error, path, "not a readable audio file")


def test_video_without_sound_is_refused(tmp_path):
    path = write_video(tmp_path / "mute.mp4", gradient_frames(6, 32, 32))
    with pytest.raises(AudioError) as error:
        analyse(path, fps=30.0)
    assert_one_line_error(error, path, "no audio stream")


def test_missing_and_empty_tracks_are_refused(tmp_path):
    with pytest.raises(AudioError) as error:
        analyse(tmp_path / "gone.wav", fps=30.0)
    assert_one_line_error(error, tmp_path / "gone.wav", "no such audio file")
    empty = write_audio(tmp_path / "empty.wav", np.zeros(0, np.float32), SAMPLE_RATE_HZ)
    with pytest.raises(AudioError) as error:
        analyse(empty, fps=30.0)
    assert_one_line_error(error, empty, "no samples")


def test_synth_music_is_reproducible_and_seeded():
    first = render_music(2.0, 128.0, seed=3, sample_rate_hz=SAMPLE_RATE_HZ)
    assert first.shape == (2 * SAMPLE_RATE_HZ,) and first.dtype == np.float32
    assert np.abs(first).max() == pytest.approx(0.9, abs=1e-4)
    np.testing.assert_array_equal(first, render_music(2.0, 128.0, seed=3, sample_rate_hz=SAMPLE_RATE_HZ))
    assert not np.allclose(first, render_music(2.0, 128.0, seed=4, sample_rate_hz=SAMPLE_RATE_HZ))


def test_synth_music_gets_louder_in_its_drop(tmp_path):
    # Sections are two bars: intro, groove, break, drop. At 120 bpm a bar lasts 2 s.
    samples, rate = load_audio(synth_music(tmp_path / "track.mp3", seconds=16.0, bpm=120.0, seed=1), SAMPLE_RATE_HZ)
    assert len(samples) / rate == pytest.approx(16.0, abs=0.01)
    rms = [float(np.sqrt(np.mean(samples[i * 4 * rate : (i + 1) * 4 * rate] ** 2))) for i in range(4)]
    intro, groove, breakdown, drop = rms
    assert breakdown < groove < drop and intro < drop
