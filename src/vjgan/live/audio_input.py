"""Where live audio comes from: a sound device (line-in, a microphone, a loopback) or a file played in real
time; either feeds `AudioAnalyser` hop by hop on a thread of its own and keeps the newest features.

A consumer (the generator thread, the status) reads `latest()`: one slot, newest wins, never a queue,
since a frame wants the sound of now, not a backlog. Events (onsets, beats) also go to a log read with
`events_since` and to an optional `on_event` callback (OSC pulses), so none is lost between two frames.

Times are the caller's clock (`time.perf_counter` by default) at the end of the hop: for a device, the
moment its last sample reached the converter (PortAudio's `inputBufferAdcTime` mapped onto the clock,
never later than the callback that delivered it, and replaced by the callback's time where it claims more
delay than the stream buffers, as ALSA's pulse plugin does while PulseAudio settles a new stream's
latency); for a file, the moment its last sample is due. A file
plays on the clock, sample k at start + k / rate, whether or not it is heard: the analysis is the same
with or without a sound card, which makes the file the deterministic test input. When it is heard, the
output follows the clock (each block placed by its DAC time), so what is heard is what is analysed.

sounddevice and PortAudio load only when an input is made (`vjgan` starts without them); PortAudio caches
the device list at start, so it is refreshed whenever devices are listed or opened and no stream is open.
"""

import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vjgan.errors import AudioError, LiveError
from vjgan.live import import_package
from vjgan.live.audio_analysis import AudioAnalyser, AudioFeatures
from vjgan.render.audio import load_audio

FILE_SAMPLE_RATE_HZ = 48000  # files are decoded to this rate: the usual output rate, so playback needs no resampling
EVENTS_KEPT = 100_000  # onsets and beats the log keeps (hours of music), oldest dropped first
QUEUE_SECONDS = 1.0  # audio a device input may queue for the analysis thread before hops are dropped, seconds
RESYNC_SECONDS = 0.02  # a file's playback jumps back onto the clock when it drifts further than this, seconds
ADC_TRUST_SECONDS = 0.05  # an ADC time this much older than the stream's latency allows is not believed, seconds
PORTAUDIO_HINT = "apt-get install libportaudio2 (Linux; macOS and Windows wheels bundle it)"


@dataclass(frozen=True)
class AudioEvent:
    """An onset or a beat, as the features of its hop reported it."""

    kind: str  # "onset" or "beat"
    time_seconds: float  # the caller's clock at the end of the hop it was detected in
    count: int  # the features' onset_count or beat_count with it
    strength: float  # onset strength (beats: 1)


def _sounddevice():
    """The sounddevice module, or a one-line LiveError naming what to install."""
    try:
        return import_package("sounddevice", "live audio", "sounddevice")
    except OSError:  # sounddevice loads PortAudio at import
        raise LiveError(f"live audio needs the PortAudio library: {PORTAUDIO_HINT}") from None


_open_streams = 0  # PortAudio streams of ours now open: refreshing the device list would close them
_streams_lock = threading.Lock()


def _refreshed_devices(sd) -> list[dict]:
    """PortAudio's devices as they are now (a sound server started after import, a device plugged in),
    re-listed unless a stream is open (re-initialising PortAudio would close it)."""
    with _streams_lock:
        if _open_streams == 0:
            sd._terminate()
            sd._initialize()
    return list(sd.query_devices())


def _opened(make_stream):
    """`make_stream()` counted as open until `_closed`, so no refresh closes it."""
    global _open_streams
    stream = make_stream()
    with _streams_lock:
        _open_streams += 1
    return stream


def _closed(stream) -> None:
    global _open_streams
    stream.stop()
    stream.close()
    with _streams_lock:
        _open_streams -= 1


def list_audio_devices() -> list[str]:
    """One line per sound device, for `vjgan live --list-devices`: index, name, host API, channels, defaults."""
    sd = _sounddevice()
    devices = _refreshed_devices(sd)
    hostapis = sd.query_hostapis()
    default_input, default_output = sd.default.device
    lines = []
    for index, device in enumerate(devices):
        marks = [
            kind for kind, default in (("default input", default_input), ("default output", default_output)) if default == index
        ]
        lines.append(
            f"{index:>3}  {device['name']} ({hostapis[device['hostapi']]['name']}): "
            f"{device['max_input_channels']} in, {device['max_output_channels']} out"
            + (f"  [{', '.join(marks)}]" if marks else "")
        )
    return lines


def find_input_device(device: str | int | None) -> tuple[int, dict]:
    """The input device `device` names (None: the default input; an index; or a name, whole or a part of it,
    any case): (index, PortAudio's description). Unknown or ambiguous -> a one-line LiveError listing the inputs."""
    sd = _sounddevice()
    devices = _refreshed_devices(sd)
    inputs = {index: info for index, info in enumerate(devices) if info["max_input_channels"] > 0}
    listing = "; ".join(f"{index} {info['name']}" for index, info in inputs.items()) or "none"
    if device is None:
        index = sd.default.device[0]
        if index not in inputs:
            raise LiveError(f"no default audio input on this machine; choose one with --audio-in (inputs: {listing})")
        return index, inputs[index]
    text = str(device).strip()
    if text.isdigit():
        index = int(text)
        if index not in inputs:
            raise LiveError(f"audio input {index}: no input device has that index (inputs: {listing}; vjgan live --list-devices)")
        return index, inputs[index]
    exact = [index for index, info in inputs.items() if info["name"].lower() == text.lower()]
    partial = [index for index, info in inputs.items() if text.lower() in info["name"].lower()]
    found = exact or partial
    if not found:
        raise LiveError(f"audio input {text!r}: no such input device (inputs: {listing}; vjgan live --list-devices)")
    if len(found) > 1:
        matches = "; ".join(f"{index} {inputs[index]['name']}" for index in found)
        raise LiveError(f"audio input {text!r}: several devices match ({matches}); give the index or the whole name")
    return found[0], inputs[found[0]]


class AudioInput:
    """What every source shares: the analyser, the newest features, the event log and the thread's life.

    `start()` begins, `close()` ends (both through `with`); `analyser.sensitivity`, `.gain` and `.auto_gain`
    may be set at any time from any thread.
    """

    def __init__(self, sample_rate_hz: int, clock: Callable[[], float], on_event: Callable[[AudioEvent], None] | None):
        self.clock = clock
        self.analyser = AudioAnalyser(sample_rate_hz)
        self.sample_rate_hz = sample_rate_hz
        self._latest = AudioFeatures.silence(clock())
        self._events: deque[AudioEvent] = deque(maxlen=EVENTS_KEPT)
        self._n_events = 0  # events ever logged: the next one's number
        self._events_lock = threading.Lock()
        self._on_event = on_event
        self._stream = None  # a PortAudio stream, where the source has one
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"vjgan-{type(self).__name__}", daemon=True)

    @property
    def ended(self) -> bool:
        """Whether the source has nothing more to give (a file played to its end)."""
        return False

    def latest(self) -> AudioFeatures:
        """The newest features (silence before the first hop)."""
        return self._latest

    def events_since(self, index: int = 0) -> list[AudioEvent]:
        """The events numbered `index` onwards, in order (numbered from 0 as they happen): a reader passes the
        number of events it has already seen. Events older than the last EVENTS_KEPT are gone."""
        with self._events_lock:
            first_kept = self._n_events - len(self._events)
            return list(self._events)[max(0, index - first_kept) :]

    def start(self) -> "AudioInput":
        self._thread.start()
        if self._stream is not None:
            self._stream.start()
        return self

    def close(self) -> None:
        """Stops the stream and the thread; safe to call twice."""
        if self._closing.is_set():
            return
        self._closing.set()
        if self._stream is not None:
            _closed(self._stream)
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> "AudioInput":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        raise NotImplementedError

    def _publish(self, hop: np.ndarray, end_seconds: float) -> None:
        """Analyse a hop on this source's thread; publish its features, then log and pass on its events."""
        before = self._latest
        features = self.analyser.process(hop, end_seconds)
        self._latest = features
        events = []
        if features.onset_count != before.onset_count:
            events.append(AudioEvent("onset", end_seconds, features.onset_count, features.onset))
        if features.beat_count != before.beat_count:
            events.append(AudioEvent("beat", end_seconds, features.beat_count, 1.0))
        if not events:
            return
        with self._events_lock:
            self._events.extend(events)
            self._n_events += len(events)
        if self._on_event is not None:
            for event in events:
                self._on_event(event)


class FileAudioInput(AudioInput):
    """A track played as if live: hop k is analysed when its last sample is due, at start + (k + 1) * hop / rate.

    `play`: True heard on the default output (a LiveError where there is none), False silent, "auto" heard
    where an output exists. `loop` starts the track over at its end; otherwise `ended` turns true after the
    last hop. Any file vjgan reads (wav, flac, mp3, ogg, m4a, a video's sound).
    """

    def __init__(
        self,
        path: Path,
        clock: Callable[[], float] = time.perf_counter,
        play: bool | str = "auto",
        loop: bool = False,
        on_event: Callable[[AudioEvent], None] | None = None,
        sample_rate_hz: int = FILE_SAMPLE_RATE_HZ,
    ):
        if play not in (True, False, "auto"):
            raise ValueError(f"play is True, False or 'auto', got {play!r}")
        self.path = Path(path)
        try:
            self.samples, rate = load_audio(self.path, sample_rate_hz, refuse_silence=False)  # (n,) float32 mono
        except AudioError as error:
            raise LiveError(str(error)) from None
        super().__init__(rate, clock, on_event)
        self.loop = loop
        self.duration_seconds = len(self.samples) / rate
        self.start_seconds: float | None = None  # the clock when the first sample was due
        self._ended = False
        self._play_position = 0  # the next sample the output plays
        if play:
            self._stream = self._output_stream(strict=play is True)
        self.playing = self._stream is not None

    @property
    def ended(self) -> bool:
        return self._ended

    def start(self) -> "FileAudioInput":
        self.start_seconds = self.clock()
        return super().start()

    def _output_stream(self, strict: bool):
        """A stream on the default output, or None where there is none and `strict` is off."""
        try:
            sd = _sounddevice()
            _refreshed_devices(sd)
            channels = min(2, sd.query_devices(kind="output")["max_output_channels"])
            return _opened(
                lambda: sd.OutputStream(
                    samplerate=self.sample_rate_hz,
                    blocksize=self.analyser.hop_samples,
                    channels=channels,
                    dtype="float32",
                    callback=self._play,
                )
            )
        except LiveError:
            if strict:
                raise
            return None
        except (sd.PortAudioError, ValueError) as error:  # no default output, or it refuses the stream
            if strict:
                raise LiveError(f"{self.path}: cannot play on the default audio output ({error}); play it silently") from None
            return None

    def _slice(self, position: int, n: int) -> np.ndarray:
        """Samples position..position + n of the track: (n,) float32, silence before its start and after its
        end (or the track again, looping)."""
        indices = position + np.arange(n)
        inside = indices >= 0 if self.loop else (indices >= 0) & (indices < len(self.samples))
        hop = np.zeros(n, np.float32)
        hop[inside] = self.samples[indices[inside] % len(self.samples)]
        return hop

    def _run(self) -> None:
        hop_samples = self.analyser.hop_samples
        n_hops = math.ceil(len(self.samples) / hop_samples)
        index = 0
        while self.loop or index < n_hops:
            due_seconds = self.start_seconds + (index + 1) * hop_samples / self.sample_rate_hz
            if self._closing.wait(max(0.0, due_seconds - self.clock())):
                return
            self._publish(self._slice(index * hop_samples, hop_samples), due_seconds)
            index += 1
        self._ended = True

    def _play(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        """PortAudio's output callback: the samples due when this block reaches the speaker, by the clock."""
        now = self.clock()
        dac = time_info.outputBufferDacTime
        heard_seconds = dac + (now - time_info.currentTime) if dac > 0 else now + self._stream.latency
        wanted = round((heard_seconds - self.start_seconds) * self.sample_rate_hz)
        if abs(wanted - self._play_position) > RESYNC_SECONDS * self.sample_rate_hz:
            self._play_position = wanted
        outdata[:] = self._slice(self._play_position, frames)[:, None]
        self._play_position += frames


class DeviceAudioInput(AudioInput):
    """A sound device's input (mono: the channels averaged), at its default rate unless `sample_rate_hz` is given.

    PortAudio's callback only copies the hop and its time into a queue; the analysis runs on this input's thread,
    so a slow frame never makes the sound card drop samples. `dropped_hops` counts hops the queue had no room
    for, `overflows` the device's own.
    """

    def __init__(
        self,
        device: str | int | None = None,
        clock: Callable[[], float] = time.perf_counter,
        on_event: Callable[[AudioEvent], None] | None = None,
        sample_rate_hz: int | None = None,
    ):
        sd = _sounddevice()
        index, info = find_input_device(device)
        super().__init__(int(sample_rate_hz or info["default_samplerate"]), clock, on_event)
        self.device_name = info["name"]
        self.dropped_hops = 0
        self.overflows = 0
        hop_seconds = self.analyser.hop_seconds
        self._hops: queue.Queue = queue.Queue(maxsize=max(1, round(QUEUE_SECONDS / hop_seconds)))
        try:
            self._stream = _opened(
                lambda: sd.InputStream(
                    device=index,
                    samplerate=self.sample_rate_hz,
                    blocksize=self.analyser.hop_samples,  # PortAudio then calls back with exactly one hop
                    channels=min(2, info["max_input_channels"]),
                    dtype="float32",
                    latency="low",
                    callback=self._capture,
                )
            )
        except (sd.PortAudioError, ValueError) as error:
            raise LiveError(
                f"audio input {index} {self.device_name!r}: cannot open it at {self.sample_rate_hz} Hz ({error})"
            ) from None

    def _capture(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        """PortAudio's input callback: never blocks, never analyses."""
        now = self.clock()
        if status.input_overflow:
            self.overflows += 1
        hop_seconds = frames / self.sample_rate_hz
        end_seconds = time_info.inputBufferAdcTime + (now - time_info.currentTime) + hop_seconds
        # Not believed: 0 (some host APIs), or older than the stream's buffering allows (ALSA's pulse plugin while
        # PulseAudio settles its latency). A hop cannot end after it is delivered.
        if time_info.inputBufferAdcTime <= 0 or end_seconds < now - self._stream.latency - hop_seconds - ADC_TRUST_SECONDS:
            end_seconds = now
        end_seconds = min(end_seconds, now)
        try:
            self._hops.put_nowait((indata.mean(axis=1, dtype=np.float32), end_seconds))
        except queue.Full:
            self.dropped_hops += 1

    def _run(self) -> None:
        while not self._closing.is_set():
            try:
                hop, end_seconds = self._hops.get(timeout=0.1)
            except queue.Empty:
                continue
            self._publish(hop, end_seconds)
