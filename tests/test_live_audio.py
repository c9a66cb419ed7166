"""Live audio: the causal analysis fed directly (milliseconds), files played in real time, and a sound device
hearing what is played into PulseAudio's null sink (real PortAudio, real PulseAudio)."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile
from services import pulse_server  # noqa: F401

from vjgan.errors import LiveError
from vjgan.live.audio_analysis import AudioAnalyser, AudioFeatures, TapTempo, mel_filters
from vjgan.live.audio_input import DeviceAudioInput, FileAudioInput, list_audio_devices
from vjgan.render.music import render_music

RATE_HZ = 48000
HOP_SECONDS = 512 / RATE_HZ


def clicks(times_seconds, duration_seconds: float, level_db: float = -6.0, rate_hz: int = RATE_HZ) -> np.ndarray:
    """Mono float32: a 10 ms decaying noise burst (a click, a hi-hat-like hit) peaking at `level_db` at each time."""
    samples = np.zeros(int(round(duration_seconds * rate_hz)), np.float32)
    length = rate_hz // 100
    burst = np.random.default_rng(1).standard_normal(length) * np.exp(-np.arange(length) / (length / 5))
    burst = (burst / np.abs(burst).max() * 10 ** (level_db / 20)).astype(np.float32)
    for time_seconds in times_seconds:
        start = int(round(time_seconds * rate_hz))
        samples[start : start + length] += burst[: len(samples) - start]
    return samples


def feed(analyser: AudioAnalyser, samples: np.ndarray, start_seconds: float = 0.0) -> list[AudioFeatures]:
    """The features after each whole hop of `samples`, the first sample sounding at `start_seconds`."""
    hop = analyser.hop_samples
    return [
        analyser.process(samples[index : index + hop], start_seconds + (index + hop) / analyser.sample_rate_hz)
        for index in range(0, len(samples) - hop + 1, hop)
    ]


def event_times(features: list[AudioFeatures], count: str) -> np.ndarray:
    """Times of the hops whose `count` (onset_count or beat_count) stepped: (events,) seconds."""
    counts = np.array([getattr(feature, count) for feature in features])
    steps = np.diff(counts, prepend=0)
    assert steps.max(initial=0) <= 1, "one event per hop at most"
    return np.array([feature.time_seconds for feature in features])[steps == 1]


def test_mel_filters_are_librosas():
    """The onset flux is the offline analysis's: the same Slaney mel bands."""
    import librosa

    for rate_hz, fft_size in ((48000, 2048), (22050, 1024), (44100, 2048)):
        np.testing.assert_allclose(
            mel_filters(rate_hz, fft_size, 128), librosa.filters.mel(sr=rate_hz, n_fft=fft_size), atol=1e-7
        )


@pytest.mark.parametrize("rate_hz", [48000, 44100])
def test_each_click_is_one_onset_reported_in_its_hop_or_the_next(rate_hz):
    analyser = AudioAnalyser(rate_hz)
    hop_seconds = analyser.hop_seconds
    # 0.37 s apart: the clicks fall at every position within a hop.
    times = 0.5 + np.arange(16) * 0.37
    onsets = event_times(feed(analyser, clicks(times, 7.0, rate_hz=rate_hz)), "onset_count")
    assert len(onsets) == len(times)
    delays = onsets - times
    assert (delays > 0).all() and (delays <= 2 * hop_seconds + 1e-9).all(), delays  # never before the sound, at most a hop late


def test_silence_and_a_noise_floor_below_the_gate_give_nothing():
    for samples in (
        np.zeros(RATE_HZ * 10, np.float32),
        np.random.default_rng(0).standard_normal(RATE_HZ * 10).astype(np.float32) * 10**-3.5,
    ):
        features = feed(AudioAnalyser(RATE_HZ), samples)
        last = features[-1]
        assert last.onset_count == 0 and last.beat_count == 0 and last.bpm is None
        assert max(max(feature.signals().values()) for feature in features) == 0.0
    assert last.level_db == pytest.approx(-70, abs=1)  # the noise's level is still shown


def test_noise_above_the_gate_starts_with_one_onset_and_stays_calm():
    noise = np.random.default_rng(0).standard_normal(RATE_HZ * 6).astype(np.float32) * 0.03
    features = feed(AudioAnalyser(RATE_HZ), noise)
    assert features[-1].onset_count == 1  # the noise starting is an onset; its flicker is not
    assert max(feature.onset for feature in features[20:]) < 0.3
    assert features[-1].beat_count == 0


@pytest.mark.parametrize("bpm", [90, 120, 174])
def test_a_click_track_gives_its_tempo_and_beats_on_the_clicks(bpm):
    times = 0.25 + np.arange(int(9 * bpm / 60)) * 60 / bpm
    features = feed(AudioAnalyser(RATE_HZ), clicks(times, 9.5))
    assert features[-1].bpm == pytest.approx(bpm, rel=0.005)
    beats = event_times(features, "beat_count")
    steady = beats[(beats > 3.0) & (beats < times[-1])]
    assert len(steady) >= int((times[-1] - 3.0) * bpm / 60) - 1
    # Each beat lands with a click: at its onset's hop, not a guess later.
    nearest = times[np.argmin(np.abs(steady[:, None] - times[None, :]), axis=1)]
    assert np.all((steady - nearest > 0) & (steady - nearest < 0.03)), steady - nearest
    beat_values = [feature.beat for feature in features if feature.time_seconds in set(beats)]
    assert beat_values and all(value == 1.0 for value in beat_values)


def test_music_gives_its_tempo_and_beats_on_the_kicks():
    bpm = 128.0
    music = render_music(11.0, bpm, seed=0, sample_rate_hz=RATE_HZ)  # kicks on every beat for 8 bars but the break
    features = feed(AudioAnalyser(RATE_HZ), music)
    assert features[-1].bpm == pytest.approx(bpm, rel=0.01)
    beats = event_times(features, "beat_count")
    in_groove = beats[(beats > 3.0) & (beats < 7.5)]  # bars 2-3: kick, snare, hats, bass
    phase = (in_groove / (60 / bpm)) % 1.0
    assert len(in_groove) >= 8 and np.all((phase > 0) & (phase < 0.06)), phase


def test_random_hits_give_no_tempo():
    times = np.sort(np.random.default_rng(3).uniform(0.2, 9.5, 25))
    features = feed(AudioAnalyser(RATE_HZ), clicks(times, 10.0))
    assert features[-1].onset_count >= 20
    assert features[-1].bpm is None


def test_tap_tempo():
    taps = TapTempo()
    assert taps.tap(10.0) is None
    assert taps.tap(10.5) == pytest.approx(120)
    assert taps.tap(11.0) == pytest.approx(120)
    assert taps.tap(14.0) is None  # a pause starts afresh
    assert taps.tap(14.6) == pytest.approx(100)

    # Taps into silence: each tap is a beat, and the beats go on at the tapped tempo.
    analyser = AudioAnalyser(RATE_HZ)
    silence = np.zeros(analyser.hop_samples, np.float32)
    tap_times = [0.2, 0.8, 1.4, 2.0]
    beat_times, index = [], 0
    for hop_index in range(int(5.0 / analyser.hop_seconds)):
        end_seconds = (hop_index + 1) * analyser.hop_seconds
        while index < len(tap_times) and tap_times[index] <= end_seconds:
            bpm = analyser.tap(tap_times[index])
            index += 1
        features = analyser.process(silence, end_seconds)
        if features.beat_count > len(beat_times):
            beat_times.append(end_seconds)
    assert bpm == pytest.approx(100)
    assert features.bpm == pytest.approx(100) and features.onset_count == 0
    np.testing.assert_allclose(beat_times, np.arange(len(beat_times)) * 0.6 + 0.2, atol=analyser.hop_seconds + 1e-9)
    assert len(beat_times) == 8


def test_a_tapped_tempo_settles_the_octave_and_the_audio_refines_it():
    times = 0.25 + np.arange(18) * 0.5  # 120 bpm
    samples = clicks(times, 9.5)
    for tapped_bpm, heard_bpm in ((62.0, 60.0), (116.0, 120.0)):
        analyser = AudioAnalyser(RATE_HZ)
        analyser.tap(0.0)
        analyser.tap(60.0 / tapped_bpm)
        assert feed(analyser, samples)[-1].bpm == pytest.approx(heard_bpm, rel=0.01)


def test_auto_gain_makes_quiet_and_loud_inputs_drive_alike():
    times = 0.3 + np.arange(10) * 0.4

    def peaks(level_db: float, **settings) -> tuple[float, float]:
        analyser = AudioAnalyser(RATE_HZ)
        for name, value in settings.items():
            setattr(analyser, name, value)
        features = feed(analyser, clicks(times, 4.5, level_db))
        assert features[-1].onset_count == len(times)
        return max(feature.rms for feature in features[40:]), max(feature.onset for feature in features[40:])

    quiet, loud = peaks(-30), peaks(-6)
    assert quiet[0] == pytest.approx(loud[0], abs=0.05) and quiet[1] == pytest.approx(loud[1], abs=0.1)
    assert min(loud) > 0.9
    # Without it, the level is the input's times the gain: 24 dB apart, and a gain of 4 lifts it 12 dB.
    quiet_manual, loud_manual = peaks(-30, auto_gain=False)[0], peaks(-6, auto_gain=False)[0]
    assert loud_manual / quiet_manual == pytest.approx(10 ** (24 / 20), rel=0.05)
    assert peaks(-30, auto_gain=False, gain=4.0)[0] / quiet_manual == pytest.approx(4.0, rel=0.01)


def test_sensitivity_decides_whether_quieter_hits_count():
    """Loud and soft hits over a steady bed: sensitivity 1 counts the loud ones, 3 the soft ones too, 0 none."""
    bed = np.random.default_rng(2).standard_normal(RATE_HZ * 6).astype(np.float32) * 10 ** (-45 / 20)
    loud_times, soft_times = 0.5 + np.arange(6) * 0.9, 0.95 + np.arange(6) * 0.9
    samples = bed + clicks(loud_times, 6.0, -6.0) + clicks(soft_times, 6.0, -20.0)
    counts = {}
    for sensitivity in (0.0, 1.0, 3.0):
        analyser = AudioAnalyser(RATE_HZ)
        analyser.sensitivity = sensitivity
        counts[sensitivity] = feed(analyser, samples)[-1].onset_count
    assert counts == {0.0: 0, 1.0: 1 + len(loud_times), 3.0: 1 + len(loud_times) + len(soft_times)}  # 1: the bed starting


def test_bands_follow_the_pitch():
    seconds = np.arange(RATE_HZ * 2) / RATE_HZ
    for frequency_hz, band in ((60.0, "low"), (800.0, "mid"), (6000.0, "high")):
        tone = (0.3 * np.sin(2 * np.pi * frequency_hz * seconds)).astype(np.float32)
        last = feed(AudioAnalyser(RATE_HZ), tone)[-1]
        levels = {name: getattr(last, name) for name in ("low", "mid", "high")}
        assert levels[band] > 0.9 and all(level < 0.25 for name, level in levels.items() if name != band), (frequency_hz, levels)
        assert last.rms > 0.9 and last.level_db == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.5)


def test_silence_features():
    silence = AudioFeatures.silence(3.0)
    assert silence.time_seconds == 3.0 and silence.onset_count == 0 and silence.bpm is None
    assert silence.signals() == dict.fromkeys(("rms", "onset", "low", "mid", "high", "beat"), 0.0)


def test_a_file_plays_in_real_time_with_onsets_at_their_times(tmp_path):
    times = np.array([0.3, 0.75, 1.2, 1.65])
    path = tmp_path / "clicks.flac"
    soundfile.write(path, clicks(times, 2.0), RATE_HZ)
    called = []
    source = FileAudioInput(path, play=False, on_event=lambda event: called.append((event, time.perf_counter())))
    assert source.latest().onset_count == 0 and not source.playing
    with source:
        while not source.ended:
            time.sleep(0.01)
        elapsed_seconds = time.perf_counter() - source.start_seconds
    assert elapsed_seconds >= 2.0 - HOP_SECONDS  # played as if live, not as fast as it decodes
    onsets = [event for event in source.events_since(0) if event.kind == "onset"]
    delays = np.array([event.time_seconds for event in onsets]) - source.start_seconds - times
    assert len(onsets) == len(times) and np.all((delays > 0) & (delays < 0.03)), delays
    assert [event.count for event in onsets] == [1, 2, 3, 4] and onsets[0].strength == 1.0
    assert source.events_since(len(source.events_since(0)) - 1) == source.events_since(0)[-1:]
    # Each event reached the callback once its hop had played, never before.
    assert [event for event, _ in called] == source.events_since(0)
    assert all(0 <= at - event.time_seconds < 0.25 for event, at in called)
    assert source.latest().time_seconds == pytest.approx(source.start_seconds + 2.0, abs=HOP_SECONDS)


def test_a_looping_file_starts_over(tmp_path):
    path = tmp_path / "one.wav"
    soundfile.write(path, clicks([0.1], 0.4), RATE_HZ)
    with FileAudioInput(path, play=False, loop=True) as source:
        time.sleep(1.0)
        assert not source.ended
    assert source.latest().onset_count >= 2


def test_bad_files_are_one_line_errors_naming_them(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wave file" * 10)
    for path in (garbage, tmp_path / "missing.mp3"):
        with pytest.raises(LiveError) as error:
            FileAudioInput(path, play=False)
        assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_silent_file_plays_and_fires_nothing(tmp_path):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(RATE_HZ // 2, np.float32), RATE_HZ)  # digital silence: a track like any other, live
    with FileAudioInput(silent, play=False) as source:
        while not source.ended:
            time.sleep(0.05)
        features = source.latest()
    assert (features.onset_count, features.beat_count, features.rms) == (0, 0, 0.0)


def wait_until_steady(source: DeviceAudioInput, seconds: float = 0.5) -> None:
    """PulseAudio's idle null sink sleeps up to 2 s before it serves a new stream: wait until hops have flowed
    for `seconds` without a pause."""
    start = time.perf_counter()
    steady_since = None
    last_seconds, last_change = source.latest().time_seconds, start
    while time.perf_counter() - start < 5.0:
        time.sleep(0.005)
        now = time.perf_counter()
        if source.latest().time_seconds != last_seconds:
            last_seconds, last_change = source.latest().time_seconds, now
            steady_since = steady_since or now
        elif now - last_change > 0.1:
            steady_since = None
        if steady_since is not None and now - steady_since >= seconds:
            return
    pytest.fail("the pulse input delivered no steady audio within 5 s")


def test_a_device_hears_the_file_played_into_the_null_sink(pulse_server, tmp_path):
    times = np.array([0.2, 0.6, 1.0, 1.4, 1.8])
    path = tmp_path / "clicks.wav"
    soundfile.write(path, clicks(times, 2.2), RATE_HZ)
    with DeviceAudioInput("pulse") as device:
        assert device.device_name == "pulse"
        wait_until_steady(device)
        heard_before = len(device.events_since(0))
        with FileAudioInput(path, play=True) as played:
            assert played.playing
            while not played.ended:
                time.sleep(0.02)
            time.sleep(0.2)
    heard = [event for event in device.events_since(heard_before) if event.kind == "onset"]
    delays = np.array([event.time_seconds for event in heard]) - played.start_seconds - times[: len(heard)]
    assert len(heard) == len(times) and np.all(np.abs(delays) < 0.05), delays
    assert device.dropped_hops == 0


def test_devices_are_listed_and_an_unknown_one_is_a_one_line_error(pulse_server):
    lines = list_audio_devices()
    assert any(" pulse " in line and " in, " in line for line in lines), lines
    with pytest.raises(LiveError) as error:
        DeviceAudioInput("no such soundcard")
    message = str(error.value)
    assert "'no such soundcard'" in message and "pulse" in message and "--list-devices" in message and "\n" not in message
    with pytest.raises(LiveError, match="no input device has that index"):
        DeviceAudioInput(9999)
    # By index (as text from the command line), and the default input (ALSA's default: PulseAudio here).
    index = next(int(line.split()[0]) for line in lines if " pulse " in line)
    for device, name in ((str(index), "pulse"), (None, "default")):
        source = DeviceAudioInput(device)
        assert source.device_name == name
        source.close()


FAULTS = """
import ctypes.util, sys
from vjgan.errors import LiveError
if sys.argv[1] == "no-portaudio":
    ctypes.util.find_library = lambda name: None  # as on a Linux box without libportaudio2
elif sys.argv[1] == "no-package":
    sys.modules["sounddevice"] = None  # as if not installed
from vjgan.live.audio_input import FileAudioInput, list_audio_devices
try:
    if sys.argv[1] == "no-output":
        print(FileAudioInput(sys.argv[2], play="auto").playing)
        FileAudioInput(sys.argv[2], play=True)
    else:
        list_audio_devices()
except LiveError as error:
    print(error)
"""


def test_missing_portaudio_package_or_output_are_one_line_errors(tmp_path):
    path = tmp_path / "clicks.wav"
    soundfile.write(path, clicks([0.1], 0.3), RATE_HZ)

    def run(case: str, **env) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-c", FAULTS, case, str(path)], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
        )
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        return result.stdout.strip().splitlines()

    assert run("no-portaudio") == [
        "live audio needs the PortAudio library: apt-get install libportaudio2 (Linux; macOS and Windows wheels bundle it)"
    ]
    (line,) = run("no-package")
    assert line.startswith("live audio needs sounddevice (") and line.endswith('): pip install "vjgan[live]"')
    # No sound server reachable, so no device at all: "auto" plays silently; True refuses, naming the file.
    auto, strict = run("no-output", PULSE_SERVER="unix:/nonexistent", JACK_DEFAULT_SERVER="vjgan-no-such-server")
    assert auto == "False"
    assert strict.startswith(f"{path}: cannot play on the default audio output (")
