"""Live mode: steady frame rate, dropped frames and onset-to-screen latency of `vjgan live`.

    .venv/bin/python bench/live.py RUN                        # CPU: 5-minute steady run, then 2 latency runs
    .venv/bin/python bench/live.py RUN --steady-seconds 60    # quicker
    python3 bench/live.py --stand-in seed96 --device cuda --fps 60 --headless --sizes 96,128,256   # a GPU

Each figure is a real `vjgan live` process (the command a VJ runs), reading its `--stats` JSON:
- steady: the window at the output size (under Xvfb + Mesa llvmpipe when there is no display: the GPU's
  work is done by the CPU, so this is the harder case), music-driven effects on, a track looping;
  frames shown per second, dropped frames (a tick that showed the previous frame again, or was missed).
- latency: a click track (>= 100 clicks at irregular gaps, so clicks fall at every phase of the frame clock)
  through `--audio FILE` (the file's clock) and through a PulseAudio null sink (the bench plays the clicks into
  the sink, the live process records its monitor with `--audio-in`: a real sound-card path). Each click's
  onset-to-screen time is split into: heard (click to the analyser's report: the audio block and the hop),
  wait (report to the generator reading it), make (generator + layout + effects), show (to the tick, drawn
  and swapped): the frame counted is the first whose audio features hold the onset (the effects the music
  drives are on, so that frame shows it).
- `--sizes`: the largest model that holds the frame rate: stand-in generators (random weights, the same
  arithmetic) of the `modern` preset at each size, headless.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from vjgan.model.networks import Generator
from vjgan.run.checkpoint import module_tensors, write_checkpoint
from vjgan.train.config import config_to_dict, preset

CLICK_SECONDS = 0.004  # a click: 4 ms of a decaying noise burst
SAMPLE_RATE_HZ = 48000


def stand_in_run(folder: Path, preset_name: str, size_px: int) -> Path:
    """A run holding one checkpoint of a freshly initialised generator of `preset_name` at `size_px`."""
    import dataclasses

    config = preset(preset_name)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, size_px=(size_px, size_px)))
    generator = Generator(config.model).eval()
    write_checkpoint(
        folder, module_tensors("G_ema", generator), {"config": config_to_dict(config), "counters": {"images_seen": 0}}
    )
    return folder


def click_track(path: Path, n_clicks: int, seed: int = 0) -> np.ndarray:
    """`n_clicks` clicks at random gaps of 0.35-0.65 s after a second of silence; returns their times, seconds."""
    rng = np.random.default_rng(seed)
    times = 1.0 + np.cumsum(rng.uniform(0.35, 0.65, n_clicks))
    samples = np.zeros(int((times[-1] + 1.0) * SAMPLE_RATE_HZ), np.float32)
    burst_n = int(CLICK_SECONDS * SAMPLE_RATE_HZ)
    burst = rng.uniform(-0.8, 0.8, burst_n).astype(np.float32) * np.exp(-np.arange(burst_n) / (burst_n / 4))
    for t in times:
        start = int(round(t * SAMPLE_RATE_HZ))
        samples[start : start + burst_n] += burst
    soundfile.write(path, samples, SAMPLE_RATE_HZ)
    return times


def live(args, run: Path, seconds: float, stats: Path, *extra: str, env=None) -> subprocess.Popen:
    command = [sys.executable, "-m", "vjgan", "live", str(run), "--seconds", f"{seconds:g}", "--stats", str(stats)]
    command += ["--fps", f"{args.fps:g}", "--size", args.size, "--device", args.device, *extra]
    if args.headless:
        command.append("--headless")
    else:
        command += ["--window-size", args.size]
    return subprocess.Popen(command, env=env or os.environ.copy())


def finish(process: subprocess.Popen, stats: Path, timeout: float, keep: Path | None = None) -> dict:
    """The live process's statistics once it has ended; `keep` also keeps its per-frame records there."""
    if process.wait(timeout) != 0:
        raise SystemExit(f"vjgan live exited {process.returncode}")
    if keep is not None:
        shutil.copy(stats, keep.with_name(f"{keep.stem}-{stats.name}"))
    return json.loads(stats.read_text())


def latencies(document: dict, click_times: list[float]) -> dict:
    """Per click (clock times): onset-to-screen and its stages, from the live process's frame records and
    audio event log. A click is matched to the first onset reported after it (within 150 ms)."""
    onsets = [e for e in document["audio_events"] if e["kind"] == "onset"]
    frames = [f for f in document["frames"] if not f["repeated"]]
    rows, missed = [], 0
    for click in click_times:
        event = next((e for e in onsets if click - 0.005 <= e["time_seconds"] <= click + 0.15), None)
        frame = next((f for f in frames if event and f["onset_count"] >= event["count"]), None)
        if event is None or frame is None:
            missed += 1
            continue
        rows.append(
            {
                "total": frame["shown_seconds"] - click,
                "heard": event["time_seconds"] - click,
                "wait": frame["started_seconds"] - event["time_seconds"],
                "make": frame["finished_seconds"] - frame["started_seconds"],
                "generator": frame["generator_ms"] / 1e3,
                "show": frame["shown_seconds"] - frame["finished_seconds"],
            }
        )
    table = {key: np.array([row[key] for row in rows]) * 1e3 for key in (rows[0] if rows else {})}
    return {
        "clicks": len(click_times),
        "matched": len(rows),
        "missed": missed,
        **{f"{key}_ms_p50": float(np.percentile(v, 50)) for key, v in table.items()},
        **{f"{key}_ms_p95": float(np.percentile(v, 95)) for key, v in table.items()},
    }


def play_into_sink(path: Path, n_clicks: int) -> list[float]:
    """Plays `path` into the default output (the null sink) while recording the sink's monitor, as the live
    process does; returns the clock time each click reached the monitor: the moment the sound is at a sound
    card's input, which is where vjgan's latency starts (the player's own buffering, ~0.1 s through
    PulseAudio, is the sender's, as a mixer's would be)."""
    import sounddevice

    samples, rate = soundfile.read(path, dtype="float32")
    position = 0
    arrivals: list[float] = []
    last_arrival = -1.0

    def play(outdata, frames, time_info, status):
        nonlocal position
        chunk = samples[position : position + frames]
        outdata[: len(chunk), 0] = chunk
        outdata[len(chunk) :, 0] = 0
        position += frames
        if position >= len(samples):
            raise sounddevice.CallbackStop

    def listen(indata, frames, time_info, status):
        nonlocal last_arrival
        now = time.perf_counter()
        # the block's first sample reached the input at its ADC time; never later than it was delivered
        adc = now + (time_info.inputBufferAdcTime - time_info.currentTime) if time_info.inputBufferAdcTime > 0 else now
        first_sample_seconds = min(adc, now - frames / rate)
        loud = np.flatnonzero(np.abs(indata[:, 0]) > 0.2)
        for index in loud:
            arrival = first_sample_seconds + index / rate
            if arrival - last_arrival > 0.2:  # a click, not the rest of the one before
                arrivals.append(arrival)
                last_arrival = arrival

    done = threading.Event()
    with sounddevice.InputStream(device="pulse", channels=1, samplerate=rate, blocksize=256, callback=listen, latency="low"):
        time.sleep(2.0)  # PulseAudio's idle sink wakes up
        with sounddevice.OutputStream(device="pulse", channels=1, samplerate=rate, callback=play, finished_callback=done.set):
            done.wait(len(samples) / rate + 5)
        time.sleep(0.5)
    if len(arrivals) != n_clicks:
        print(f"warning: the monitor heard {len(arrivals)} of {n_clicks} clicks", flush=True)
    return arrivals


def screenshot(run: Path, path: Path, folder: Path, seconds: float = 4.0) -> Path:
    """The README's picture of the window: a performance's canvas and status after `seconds` of music."""
    from vjgan.live.engine import LiveConfig, with_effects_reacting
    from vjgan.live.params import LiveParams
    from vjgan.live.session import LiveOptions, LiveSession
    from vjgan.live.window import save_screenshot
    from vjgan.render.music import synth_music

    track = synth_music(folder / "music.wav", seconds=seconds + 2)
    kept: dict = {}

    class Grab:
        def send(self, frame):
            if "frame" not in kept and time.perf_counter() - started >= seconds:
                kept.update(frame=frame.copy(), overlay=session.status_lines())

    params = LiveParams()
    params.update({"layout": "grid", "status": True})
    with_effects_reacting(params, ("zoom", "glitch", "rgb_split", "flash"))
    options = LiveOptions(audio_file=track, play_audio="no", headless=True, seconds=seconds + 0.5)
    session = LiveSession([run], LiveConfig(frame_size_wh=(1280, 720)), options, params, sinks=[Grab()])
    started = time.perf_counter()
    session.run()
    return save_screenshot(path, kept["frame"], kept["overlay"], size_wh=(1280, 720))


def ensure_display_and_sound(args) -> list[subprocess.Popen]:
    """An X display (Xvfb) and a PulseAudio null sink of our own where none is running."""
    started = []
    if not args.headless and not os.environ.get("DISPLAY"):
        read_end, write_end = os.pipe()
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1920x1080x24", "-nolisten", "tcp", "-noreset"],
            pass_fds=[write_end],
        )
        os.close(write_end)
        with os.fdopen(read_end) as number:
            os.environ["DISPLAY"] = ":" + number.readline().strip()
        started.append(xvfb)
    if args.loopback and shutil.which("pulseaudio") and subprocess.run(["pactl", "info"], capture_output=True).returncode != 0:
        pulse = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "-L",
                "module-native-protocol-unix",
                "-L",
                "module-null-sink sink_name=vjgan_null",
                "-L",
                "module-always-sink",
            ]
        )
        time.sleep(1.0)
        started.append(pulse)
    if args.loopback:
        subprocess.run(["pactl", "set-default-sink", "vjgan_null"], check=False)
        subprocess.run(["pactl", "set-default-source", "vjgan_null.monitor"], check=False)
    return started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, nargs="?", help="a trained run (else --stand-in)")
    parser.add_argument("--stand-in", choices=("seed96", "modern"), help="a generator with random weights instead of RUN")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--headless", action="store_true", help="no window (a GPU machine without a display)")
    parser.add_argument("--steady-seconds", type=float, default=300.0)
    parser.add_argument("--clicks", type=int, default=120)
    parser.add_argument("--no-loopback", dest="loopback", action="store_false", help="skip the PulseAudio loopback run")
    parser.add_argument("--sizes", help="comma-separated model sizes for the largest-model sweep (modern preset)")
    parser.add_argument("--sweep-seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--screenshot", type=Path, metavar="PNG", help="only make the README's picture of the window from RUN")
    args = parser.parse_args()
    services = ensure_display_and_sound(args)
    folder = Path(tempfile.mkdtemp(prefix="vjgan-bench-live-"))
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "size": args.size,
        "fps": args.fps,
        "window": "headless" if args.headless else f"window {args.size} ({os.environ.get('DISPLAY')})",
    }
    try:
        if args.screenshot:
            print("wrote", screenshot(args.run, args.screenshot, folder))
            return
        run = args.run or stand_in_run(folder / "run", args.stand_in or "seed96", 96)
        track = folder / "clicks.wav"
        offsets = click_track(track, args.clicks)
        duration = float(offsets[-1] + 1.5)
        effects = ["--effects", "zoom,trails,glitch,rgb_split,flash"]

        if args.steady_seconds > 0:
            stats = folder / "steady.json"
            process = live(
                args, run, args.steady_seconds, stats, "--audio", str(track), "--loop-audio", "--play-audio", "no", *effects
            )
            results["steady"] = finish(process, stats, args.steady_seconds + 120, args.out)["summary"]
            print("steady", json.dumps(results["steady"], indent=1), flush=True)

        stats = folder / "latency-file.json"
        process = live(args, run, duration, stats, "--audio", str(track), "--play-audio", "no", *effects)
        document = finish(process, stats, duration + 120, args.out)
        clicks = (document["audio_start_seconds"] + offsets).tolist()
        results["latency_file"] = {**latencies(document, clicks), "summary": document["summary"]}
        print("latency (file)", json.dumps(results["latency_file"], indent=1), flush=True)

        if args.loopback:
            stats = folder / "latency-loopback.json"
            process = live(args, run, duration + 8, stats, "--audio-in", "pulse", *effects)
            time.sleep(3.0)  # the live process is up and listening
            clicks = play_into_sink(track, len(offsets))
            document = finish(process, stats, duration + 120)
            results["latency_loopback"] = {**latencies(document, clicks), "summary": document["summary"]}
            print("latency (loopback)", json.dumps(results["latency_loopback"], indent=1), flush=True)

        if args.sizes:
            results["sizes"] = {}
            for size_px in (int(s) for s in args.sizes.split(",")):
                run = stand_in_run(folder / f"modern-{size_px}", "modern", size_px)
                stats = folder / f"size-{size_px}.json"
                process = live(args, run, args.sweep_seconds, stats, *effects)
                summary = finish(process, stats, args.sweep_seconds + 120)["summary"]
                results["sizes"][size_px] = summary
                print("size", size_px, json.dumps(summary), flush=True)
    finally:
        for service in services:
            service.terminate()
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
