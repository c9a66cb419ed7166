"""A whole performance: a real trained run, real audio files played on the clock, a real window under Xvfb,
real OSC over loopback, a real recording; bad input gives one line."""

import json
import socket
import time

import av
import numpy as np
import pytest
import soundfile
from faults import assert_one_line_error, fork_vjgan, run_vjgan
from services import ndi_loopback, x_display  # noqa: F401

from vjgan.live.engine import LiveConfig, with_effects_reacting
from vjgan.live.params import LiveParams
from vjgan.live.session import LiveOptions, LiveSession

RATE_HZ = 48000


class Frames:
    """A sink keeping what each tick showed, and when."""

    def __init__(self, on_frame=None):
        self.pixels: list[np.ndarray] = []
        self.times: list[float] = []
        self.on_frame = on_frame

    def send(self, frame: np.ndarray) -> None:
        self.pixels.append(frame.copy())
        self.times.append(time.perf_counter())
        if self.on_frame is not None:
            self.on_frame(self, frame)


def click_file(path, click_seconds=(), seconds=2.0):
    samples = np.zeros(int(seconds * RATE_HZ), np.float32)
    for t in click_seconds:
        start = int(t * RATE_HZ)
        samples[start : start + 200] = np.hanning(200) * 0.9
    soundfile.write(path, samples, RATE_HZ)
    return path


def session(runs, sinks=(), params=None, **options):
    config = LiveConfig(fps=30, frame_size_wh=(320, 180), device="cpu", precision="fp32", filter=options.pop("filter", "bicubic"))
    options = LiveOptions(headless=options.pop("headless", True), on_message=lambda line: None, **options)
    return LiveSession(runs, config, options, params or LiveParams(n_runs=len(runs)), sinks=sinks)


def still_params(*effects):
    """A picture that does not move, with `effects` driven by the music: any change is the audio's doing."""
    params = LiveParams()
    params.update({"freeze": True, "speed": 0.0, "audio_motion": 0.0})
    with_effects_reacting(params, effects)
    return params


def test_clicks_change_their_frames_and_silence_changes_none(tiny_run, tmp_path):
    clicks = click_file(tmp_path / "clicks.wav", (0.5, 1.0, 1.5))
    frames = Frames()
    effects = ("glitch", "rgb_split", "flash")
    session([tiny_run], [frames], still_params(*effects), audio_file=clicks, play_audio="no", seconds=2.0).run()
    with_onsets = frames.pixels
    base = np.median(np.stack(with_onsets[:10]), axis=0)
    changed = [np.abs(frame.astype(int) - base).mean() > 2 for frame in with_onsets]
    runs_of_changes = sum(1 for a, b in zip([False, *changed], changed) if b and not a)
    assert 3 <= runs_of_changes <= 4, changed  # each click lights up its frames (a tempo guess may add one beat)
    assert sum(changed) < len(changed) / 2  # and only those

    silent = Frames()
    silence = click_file(tmp_path / "silence.wav")
    session([tiny_run], [silent], still_params(*effects), audio_file=silence, play_audio="no", seconds=1.0).run()
    assert len(silent.pixels) > 20
    assert all(np.array_equal(frame, silent.pixels[0]) for frame in silent.pixels)


def test_the_window_shows_the_generators_frame(tiny_run, x_display):
    shown = []

    def grab(frames, frame):
        if len(frames.pixels) == 10:
            shown.append((frame.copy(), live.window.read_pixels()))

    frames = Frames(grab)
    live = session([tiny_run], [frames], headless=False, filter="nearest", window_size_wh=(320, 180), seconds=0.6)
    live.run()
    canvas, window = shown[0]
    # nearest: each canvas pixel is a block of the window's picture; compare at block centres
    height, width = window.shape[:2]
    scale = min(height / canvas.shape[0], width / canvas.shape[1])
    top, left = (height - canvas.shape[0] * scale) / 2, (width - canvas.shape[1] * scale) / 2
    rows = (top + (np.arange(canvas.shape[0]) + 0.5) * scale).astype(int)
    cols = (left + (np.arange(canvas.shape[1]) + 0.5) * scale).astype(int)
    assert np.abs(window[rows][:, cols].astype(int) - canvas.astype(int)).max() <= 1
    assert canvas.std() > 5


def test_an_osc_message_changes_the_picture_by_the_next_frame(tiny_run):
    port = free_udp_port()
    sent = {}

    def send_when_ready(frames, frame):
        if len(frames.pixels) == 8:
            from pythonosc.udp_client import SimpleUDPClient

            garbage = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            garbage.sendto(b"\x00not osc at all", ("127.0.0.1", port))  # malformed: one line, the show goes on
            SimpleUDPClient("127.0.0.1", port).send_message("/vjgan/fx_flash", 1.0)
            sent["at"] = time.perf_counter()

    frames = Frames(send_when_ready)
    messages = []
    params = still_params()
    live = session([tiny_run], [frames], params, osc_port=port, osc_host="127.0.0.1", seconds=1.0)
    live.say = messages.append
    live.run()
    brightness = np.array([frame.mean() for frame in frames.pixels])
    flashed = np.flatnonzero(brightness > brightness[:8].mean() + 30)
    assert len(flashed) and flashed[0] <= 10  # message after frame 8 was shown: frame 9 or 10 is white
    assert frames.times[flashed[0]] - sent["at"] < 2 / 30 + 0.02
    assert len(frames.pixels) >= 25  # the garbage packet did not stop the show
    assert any("osc" in line for line in messages)


def test_recording_has_one_frame_per_tick(tiny_run, tmp_path):
    clip = tmp_path / "show.mp4"
    stats = session([tiny_run], record=clip, seconds=1.0).run()
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        decoded = sum(1 for _ in container.decode(stream))
        assert (stream.width, stream.height) == (320, 180)
    assert decoded == stats.ticks
    assert 25 <= decoded <= 34


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_bad_input_is_one_line(tiny_run, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(fork_vjgan("live", tmp_path / "empty", "--headless", "--seconds", "1"), "no checkpoints")
    # a process of its own, not a fork: PortAudio, started in this one, cannot be restarted in a forked child
    result = run_vjgan("live", tiny_run, "--headless", "--seconds", "1", "--audio-in", "no such device")
    assert_one_line_error(result, "no such device")
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    result = fork_vjgan("live", tiny_run, "--headless", "--seconds", "1", "--osc-port", str(port), "--osc-host", "127.0.0.1")
    assert_one_line_error(result, str(port), "taken")
    taken.close()
    (tmp_path / "bad.toml").write_text("speed = [")
    assert_one_line_error(fork_vjgan("live", tiny_run, "--headless", "--preset", tmp_path / "bad.toml"), "bad.toml")
    assert_one_line_error(fork_vjgan("live", tiny_run, "--headless", "--audio", tmp_path / "none.wav"), "none.wav")
    # every output the options open is wired: on Linux without a camera device these are one line each
    assert_one_line_error(fork_vjgan("live", tiny_run, "--headless", "--syphon", "show"), "Syphon is macOS only")
    assert_one_line_error(fork_vjgan("live", tiny_run, "--headless", "--spout", "show"), "Spout is Windows only")


def test_a_preset_loads_flags_win_over_it_and_osc_saves_it(tiny_run, tmp_path):
    from vjgan.live.presets import Preset, load_preset, save_preset

    preset = save_preset(tmp_path / "show.toml", Preset({"speed": 2.5, "layout": "grid"}, []))
    stats = tmp_path / "stats.json"
    args = ("live", tiny_run, "--headless", "--seconds", "0.5", "--preset", preset, "--layout", "wall", "--stats", stats)
    assert fork_vjgan(*args).returncode == 0
    values = json.loads(stats.read_text())["params"]
    assert (values["speed"], values["layout"]) == (2.5, "wall")

    port = free_udp_port()
    saved = tmp_path / "saved.toml"

    def save_over_osc(frames, frame):
        if len(frames.pixels) == 3:
            from pythonosc.udp_client import SimpleUDPClient

            client = SimpleUDPClient("127.0.0.1", port)
            client.send_message("/vjgan/truncation", 0.7)
            client.send_message("/vjgan/preset/save", str(saved))

    session([tiny_run], [Frames(save_over_osc)], osc_port=port, osc_host="127.0.0.1", seconds=0.5).run()
    assert load_preset(saved).values["truncation"] == pytest.approx(0.7)


def test_the_command_line_opens_ndi_and_a_recording_together(tiny_run, tmp_path, ndi_loopback):
    clip = tmp_path / "show.mov"
    result = fork_vjgan(
        "live",
        tiny_run,
        "--headless",
        "--seconds",
        "0.7",
        "--size",
        "320x180",
        "--ndi",
        "vjgan-test",
        "--record",
        clip,
        "--codec",
        "hap",
    )
    assert result.returncode == 0, result.stdout
    with av.open(str(clip)) as container:
        assert sum(1 for _ in container.decode(video=0)) >= 15
