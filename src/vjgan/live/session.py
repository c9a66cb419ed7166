"""A performance: the threads of the live mode, their timing, and what is connected to them.

    audio thread (sounddevice callback or file clock) -> analyser -> newest features
    OSC server thread, MIDI callback, window keys      -> LiveParams
    generator thread: features + params -> LiveEngine.frame() -> one-slot mailbox (newest wins)
    main thread, at each tick of the frame clock: newest frame -> window, NDI/Syphon/Spout/camera, recording;
                                                  OSC pulses on beats, onsets and loop ends; status

The generator starts each frame just in time for the tick it is meant for (the tick less its recent cost
and a margin), so the audio it reads is as fresh as possible: waiting in a queue would add latency, so
there is none. A tick whose frame is not ready shows the previous one again and counts as dropped; the
recording and the outputs still get a frame every tick, so a recording is constant-rate.
"""

import json
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from vjgan.errors import LiveError
from vjgan.live.engine import LiveConfig, LiveEngine, LiveFrame
from vjgan.live.keys import apply_key
from vjgan.live.params import LiveParams
from vjgan.live.presets import Preset, load_preset, save_preset

COST_MARGIN_SECONDS = 0.004  # the generator starts this much earlier than its recent cost says it needs
COST_PERCENTILE = 90  # of recent frame costs, the one a frame is planned with
STATUS_EVERY_SECONDS = 1.0  # the terminal status line's period
RECENT_SECONDS = 60.0  # frame records kept for the status and the closing summary (all of them with --stats)
# OSC addresses the session answers itself (beside every parameter's), and its method that does
SESSION_ADDRESSES = {
    "/vjgan/preset/load": "load_preset",
    "/vjgan/preset/save": "save_preset",
    "/vjgan/midi/learn": "learn",
    "/vjgan/quit": "quit",
}


@dataclass(frozen=True)
class LiveOptions:
    """What a performance is connected to; none of it changes the picture."""

    audio_file: Path | None = None  # a file played in real time (also the test input)
    audio_device: str | None = None  # a sound input by name or index
    play_audio: str = "auto"  # play --audio on the default output: "auto" (when one exists), "yes", "no"
    loop_audio: bool = False  # start the file again when it ends
    osc_port: int | None = None  # listen for OSC on this UDP port
    osc_host: str = "0.0.0.0"  # on this address (0.0.0.0: every interface)
    osc_send: str | None = None  # HOST:PORT for pulses on beats, onsets and loop ends
    midi_port: str | None = None  # a MIDI input by name or index
    midi_api: str | None = None  # rtmidi API: None = the platform's, "jack"
    preset: Path | None = None  # loaded at the start; `p` and /vjgan/preset/save write it
    ndi: str | None = None  # send as an NDI source of this name
    syphon: str | None = None  # macOS: a Syphon server of this name
    spout: str | None = None  # Windows: a Spout sender of this name
    virtual_cam: bool = False  # a virtual camera (OBS virtual camera, v4l2loopback)
    record: Path | None = None  # record to this clip
    record_codec: str | None = None  # a `vjgan.render.video.CODECS` name; None = the file's format's own
    headless: bool = False  # no window: outputs only
    fullscreen: bool = False  # the window fills monitor `monitor` (a projector)
    monitor: int = 0
    window_size_wh: tuple[int, int] | None = None  # None = the output size, at most 1280 wide
    seconds: float | None = None  # stop after this long (None: until quit)
    stop_when_audio_ends: bool = False  # stop when --audio has played through
    stats_path: Path | None = None  # per-frame timings as JSON at the end (the benchmark reads them)
    on_message: Callable[[str], None] | None = None  # where one-line notices go; None = stderr


class Mailbox:
    """Made frames waiting for the tick each was made for: the main loop takes the newest one due and drops
    older ones (newest wins, never a queue); a frame made early for a later tick waits for it."""

    def __init__(self):
        self._ready = threading.Condition()
        self._frames: list[tuple[int, LiveFrame]] = []  # (tick, frame), oldest first

    def put(self, tick: int, frame: LiveFrame) -> None:
        with self._ready:
            self._frames = [*self._frames[-2:], (tick, frame)]
            self._ready.notify_all()

    def take(self, tick: int, timeout_seconds: float = 0.0) -> LiveFrame | None:
        """The newest frame made for `tick` or an earlier one, waiting up to `timeout_seconds` for one to be put."""
        with self._ready:
            self._ready.wait_for(lambda: any(made_for <= tick for made_for, _ in self._frames), max(0.0, timeout_seconds))
            due = [frame for made_for, frame in self._frames if made_for <= tick]
            self._frames = [(made_for, frame) for made_for, frame in self._frames if made_for > tick]
        return due[-1] if due else None


@dataclass
class FrameRecord:
    """What one tick showed, for the statistics and the latency benchmark."""

    tick: int
    frame_index: int
    shown_seconds: float  # clock time after the swap (and the outputs' hand-off)
    started_seconds: float
    finished_seconds: float
    generator_ms: float
    audio_seconds: float
    onset_count: int
    repeated: bool


@dataclass
class LiveStats:
    fps: float
    kept_seconds: float | None = None  # the records kept: the last this many seconds' (None: all, for --stats)
    ticks: int = 0
    repeated: int = 0  # ticks that showed the previous frame again (the generator was late)
    skipped: int = 0  # ticks the main loop itself missed (it was late by a whole frame)
    records: deque = field(init=False)  # FrameRecord of each tick, oldest first

    def __post_init__(self):
        # a night's show at 60 fps is over a million ticks: without --stats only the recent ones are kept
        self.records = deque(maxlen=None if self.kept_seconds is None else round(self.kept_seconds * self.fps))

    def recent(self, n_ticks: int) -> list[FrameRecord]:
        return list(islice(self.records, max(0, len(self.records) - n_ticks), None))

    @property
    def dropped_fraction(self) -> float:
        return (self.repeated + self.skipped) / max(1, self.ticks + self.skipped)

    def summary(self) -> dict:
        generator_ms = np.array([r.generator_ms for r in self.records if not r.repeated] or [0.0])
        make_ms = np.array([(r.finished_seconds - r.started_seconds) * 1e3 for r in self.records if not r.repeated] or [0.0])
        shown = [r.shown_seconds for r in self.records]
        seconds = shown[-1] - shown[0] if len(shown) > 1 else 0.0
        return {
            "fps_target": self.fps,
            "fps_shown": (len(shown) - 1) / seconds if seconds > 0 else 0.0,
            "ticks": self.ticks,
            "repeated": self.repeated,
            "skipped": self.skipped,
            "dropped_fraction": self.dropped_fraction,
            "generator_ms_p50": float(np.percentile(generator_ms, 50)),
            "generator_ms_p95": float(np.percentile(generator_ms, 95)),
            "frame_ms_p50": float(np.percentile(make_ms, 50)),
            "frame_ms_p95": float(np.percentile(make_ms, 95)),
        }


class LiveSession:
    """Plays `runs`: `run()` blocks until quit, `--seconds`, or the end of the audio; Ctrl-C stops it cleanly."""

    def __init__(self, runs: list[Path], config: LiveConfig, options: LiveOptions, params: LiveParams | None = None, sinks=()):
        """`sinks`: a program's own outputs beside the ones the options open, each with `send(frame)` taking
        every shown canvas (h, w, 3) uint8 on the main thread (a frame must be copied to be kept)."""
        self.config, self.options = config, options
        self.sinks = list(sinks)
        self.params = params or LiveParams(n_runs=len(runs))
        self.say = options.on_message or (lambda line: print(line, file=sys.stderr, flush=True))
        self.midi = None
        if options.preset is not None and Path(options.preset).exists():
            preset = load_preset(options.preset)
            self.params.update(preset.values)
            self.preset_midi = preset.midi
        else:
            self.preset_midi = []
        self.engine = LiveEngine(runs, config, self.params)
        self.mailbox = Mailbox()
        self.stop_event = threading.Event()
        self.period = 1 / config.fps  # seconds between ticks
        self.clock_start = time.perf_counter()  # tick 0, set when the performance starts
        self.costs_seconds: deque[float] = deque(maxlen=60)
        self.generator_error: BaseException | None = None
        self.stats = LiveStats(config.fps, None if options.stats_path is not None else RECENT_SECONDS)
        self.audio = None
        self.osc = None
        self.window = None
        self.outputs: list = []
        self.quit_requested = False

    # --- connections -------------------------------------------------------------------------------

    def connect(self, stack: ExitStack) -> None:
        """Opens everything the options ask for; a problem with one is one line, and the rest still opens
        where the performance can go on without it (an output), or stops before anything runs (the audio)."""
        options = self.options
        if options.audio_file is not None and options.audio_device is not None:
            raise LiveError("--audio and --audio-in: choose one audio source")
        if options.audio_file is not None:
            from vjgan.live.audio_input import FileAudioInput

            play = {"auto": "auto", "yes": True, "no": False}[options.play_audio]
            self.audio = stack.enter_context(FileAudioInput(options.audio_file, play=play, loop=options.loop_audio))
        elif options.audio_device is not None:
            from vjgan.live.audio_input import DeviceAudioInput

            self.audio = stack.enter_context(DeviceAudioInput(options.audio_device))
        if self.audio is not None:
            self.engine.tap = self.audio.analyser.tap
        if options.osc_port is not None:
            from vjgan.live.osc import OscControl

            handlers = {address: getattr(self, method) for address, method in SESSION_ADDRESSES.items()}
            self.osc = stack.enter_context(
                OscControl(self.params, options.osc_port, options.osc_host, options.osc_send, self.say, handlers)
            )
        if options.midi_port is not None:
            from vjgan.live.midi import MidiControl

            self.midi = stack.enter_context(
                MidiControl(self.params, options.midi_port, self.preset_midi, options.midi_api, self.say)
            )
        if not options.headless:
            from vjgan.live.window import LiveWindow

            width, height = self.config.frame_size_wh
            size_wh = options.window_size_wh or ((1280, round(1280 * height / width)) if width > 1280 else (width, height))
            self.window = stack.enter_context(
                LiveWindow(
                    size_wh,
                    fullscreen=options.fullscreen,
                    monitor=options.monitor,
                    filter=self.config.filter,
                    on_key=self.on_key,
                )
            )
        if self.window is not None and self.window.software_renderer and self.config.filter == "bicubic":
            # The canvas is already resampled bicubically (canvas_oversample pixels per sample pixel); drawn by
            # the CPU, a bicubic window costs a core at 1080p where bilinear costs half, for a look within a level.
            self.window.filter = "bilinear"
        self.outputs = self.open_outputs(stack) + self.sinks

    def open_outputs(self, stack: ExitStack) -> list:
        from vjgan.live import outputs

        options, size_wh, fps = self.options, self.config.frame_size_wh, self.config.fps
        opened = []
        if options.ndi:
            opened.append(stack.enter_context(outputs.NdiOutput(options.ndi, size_wh, fps)))
        if options.syphon:
            opened.append(stack.enter_context(outputs.SyphonOutput(options.syphon, size_wh)))
        if options.spout:
            opened.append(stack.enter_context(outputs.SpoutOutput(options.spout, size_wh)))
        if options.virtual_cam:
            opened.append(stack.enter_context(outputs.VirtualCamOutput(size_wh, fps)))
        if options.record is not None:
            recorder = outputs.Recorder(
                options.record, size_wh, fps, codec=options.record_codec, canvas_size_wh=self.engine.canvas_size_wh
            )
            opened.append(stack.enter_context(recorder))
        return opened

    # --- controls the session carries out itself ---------------------------------------------------

    def on_key(self, key: str) -> None:
        action = apply_key(key, self.params)
        if action == "quit":
            self.quit()
        elif action == "fullscreen" and self.window is not None:
            self.window.toggle_fullscreen()
        elif action == "save_preset":
            if self.options.preset is None:
                self.say("live: no --preset FILE to save to")
            else:
                self.save_preset(str(self.options.preset))

    def quit(self, *_) -> None:
        """stop the performance"""
        self.stop_event.set()

    def save_preset(self, path: str) -> None:
        """<path>: save every parameter and MIDI mapping as a TOML preset"""
        midi = self.midi.mappings() if self.midi is not None else self.preset_midi
        save_preset(Path(path), Preset(self.params.values(), midi))
        self.say(f"live: preset saved to {path}")

    def load_preset(self, path: str) -> None:
        """<path>: load a TOML preset (parameters and MIDI mappings)"""
        preset = load_preset(Path(path))
        self.params.update(preset.values)
        if self.midi is not None:
            self.midi.set_mappings(preset.midi)
        self.say(f"live: preset {path} loaded")

    def learn(self, name: str) -> None:
        """<param>: bind the next MIDI control received to this parameter"""
        if self.midi is None:
            raise LiveError("MIDI learn: no --midi port open")
        self.params.spec(name)
        self.midi.learn(name)

    # --- the threads -------------------------------------------------------------------------------

    def generate(self) -> None:
        """The generator thread: a frame for each tick it can make in time, started as late as its recent cost
        allows, so it shows the freshest audio; it never waits for the display."""
        try:
            tick = 0
            while not self.stop_event.is_set():
                cost = np.percentile(self.costs_seconds, COST_PERCENTILE) if self.costs_seconds else self.period
                lead = cost + COST_MARGIN_SECONDS
                tick = max(tick, math.ceil((time.perf_counter() + lead - self.clock_start) / self.period))
                wait = self.clock_start + tick * self.period - lead - time.perf_counter()
                if wait > 0 and self.stop_event.wait(wait):
                    break
                frame = self.engine.frame(self.listen())
                self.costs_seconds.append(frame.finished_seconds - frame.started_seconds)
                self.mailbox.put(tick, frame)
                tick += 1
        except BaseException as error:  # surfaced on the main thread, which stops the performance
            self.generator_error = error
            self.stop_event.set()

    def listen(self):
        """The newest audio features, after handing the analyser the current sensitivity and gain."""
        if self.audio is None:
            return None
        values, analyser = self.params.values(), self.audio.analyser
        analyser.sensitivity, analyser.auto_gain, analyser.gain = values["sensitivity"], values["auto_gain"], values["gain"]
        return self.audio.latest()

    def run(self) -> LiveStats:
        with ExitStack() as stack:
            self.connect(stack)
            return self.play()

    def play(self) -> LiveStats:
        self.engine.warm_up()
        period = self.period
        # Two busy threads hand the GIL over only every switch interval (5 ms by default): a generator waiting
        # for it behind the main loop (drawing, sending) would miss a 60 fps tick; 1 ms keeps that wait short.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        start = self.clock_start = time.perf_counter() + 0.05
        generator = threading.Thread(target=self.generate, name="vjgan-live-generator", daemon=True)
        generator.start()
        shown: LiveFrame | None = None
        last_status = start
        events = {"beat": 0, "onset": 0, "loop": 0}
        tick = 0
        try:
            while not self.stop_event.is_set():
                # A frame is shown as soon as it is made (its tick is when it is due at the latest): waiting for
                # the tick would add the generator's safety margin to every frame's latency. Frames are made
                # one a tick, so they still come a tick apart; a display with vsync evens them out further.
                frame = self.mailbox.take(tick, start + tick * period - time.perf_counter())
                repeated = frame is None
                if frame is None and shown is None:  # nothing made yet (the first tick after a slow start)
                    tick += 1
                    continue
                shown = frame = frame or shown
                self.show(frame)
                shown_at = time.perf_counter()
                self.stats.ticks += 1
                self.stats.repeated += repeated
                self.stats.records.append(
                    FrameRecord(
                        tick,
                        frame.index,
                        shown_at,
                        frame.started_seconds,
                        frame.finished_seconds,
                        frame.generator_ms,
                        frame.audio.time_seconds,
                        frame.audio.onset_count,
                        repeated,
                    )
                )
                if not repeated:
                    self.pulse(frame, events)
                if shown_at - last_status >= STATUS_EVERY_SECONDS:
                    last_status = shown_at
                    self.terminal_status()
                tick += 1
                behind = int((time.perf_counter() - (start + tick * period)) / period)
                if behind > 0:  # the main loop itself fell a whole frame behind: those ticks are lost
                    self.stats.skipped += behind
                    tick += behind
                if self.finished(shown_at - start):
                    break
        except KeyboardInterrupt:
            self.say("live: stopped")
        finally:
            self.stop_event.set()
            generator.join(5)
            sys.setswitchinterval(switch_interval)
        if self.generator_error is not None:
            raise self.generator_error
        if self.options.stats_path is not None:
            self.write_stats(Path(self.options.stats_path))
        return self.stats

    def finished(self, elapsed_seconds: float) -> bool:
        if self.options.seconds is not None and elapsed_seconds >= self.options.seconds:
            return True
        if self.window is not None and self.window.should_close:
            return True
        return self.options.stop_when_audio_ends and self.audio is not None and self.audio.ended

    def show(self, frame: LiveFrame) -> None:
        if self.window is not None:
            self.window.show(frame.pixels, self.status_lines() if self.params.get("status") else None)
            self.window.poll()
        for output in self.outputs:
            output.send(frame.pixels)

    def pulse(self, frame: LiveFrame, events: dict) -> None:
        """OSC pulses out on each new beat, onset and loop end (`--osc-send`)."""
        counts = {"beat": frame.beat_count, "onset": frame.audio.onset_count, "loop": frame.loop_count}
        for name, count in counts.items():
            if count != events[name]:
                events[name] = count
                if self.osc is not None and self.options.osc_send:
                    value = frame.audio.onset if name == "onset" else count
                    self.osc.pulse(f"/vjgan/{name}", value)

    def status_lines(self) -> list[str]:
        recent = self.stats.recent(int(self.config.fps))
        seconds = recent[-1].shown_seconds - recent[0].shown_seconds if len(recent) > 1 else 0
        fps = (len(recent) - 1) / seconds if seconds > 0 else 0.0
        made = [r for r in recent if not r.repeated] or recent
        generator_ms = np.median([r.generator_ms for r in made]) if made else 0.0
        heard = [(r.shown_seconds - r.audio_seconds) * 1e3 for r in made if r.audio_seconds]
        latency_ms = np.median(heard) if heard else None
        values = self.params.values()
        audio = made[-1] if made else None
        lines = [
            f"{fps:5.1f} fps  G {generator_ms:4.1f} ms  dropped {self.stats.repeated + self.stats.skipped}"
            + (f"  audio->screen {latency_ms:.0f} ms" if latency_ms is not None and np.isfinite(latency_ms) else ""),
            f"run {self.engine.names[values['run']]}  seed {values['seed']}  {values['motion']}  speed {values['speed']:.2f}"
            f"  bpm {values['bpm']:.1f}  trunc {values['truncation']:.2f}" + ("  FROZEN" if values["freeze"] else ""),
        ]
        if self.audio is not None and audio is not None:
            level = self.audio.latest()
            bar = "#" * int(20 * min(1.0, getattr(level, "rms", 0.0)))
            lines.append(f"audio [{bar:<20}] onsets {audio.onset_count}")
        if self.midi is not None:
            mapped = ", ".join(f"{m['kind']}{m['number']}->{m['param']}" for m in self.midi.mappings()[:6])
            lines.append(f"midi {mapped or '(none: learn with /vjgan/midi/learn)'}")
        if self.osc is not None:
            lines.append("osc " + " ".join(self.osc.last_addresses()[-3:]))
        return lines

    def terminal_status(self) -> None:
        if self.window is None and self.params.get("status"):
            self.say(" | ".join(self.status_lines()))

    def write_stats(self, path: Path) -> None:
        from vjgan.files import write_atomic

        document = {
            "summary": self.stats.summary(),
            "canvas_size_wh": list(self.engine.canvas_size_wh),
            "params": self.params.values(),  # as they were at the end
            "frames": [record.__dict__ for record in self.stats.records],
            "audio_start_seconds": getattr(self.audio, "start_seconds", None),
            "audio_events": [event.__dict__ for event in self.audio.events_since(0)] if self.audio is not None else [],
        }
        write_atomic(path, json.dumps(document), "live statistics")
