"""Audio analysis and latent path speed: how long a long track takes before rendering can start.

    .venv/bin/python bench/audio.py                 # a 10-minute mp3, paths for it at 30 fps
    .venv/bin/python bench/audio.py --minutes 60    # an hour-long DJ mix

The track is the demo's synthetic music, encoded to mp3 so decoding costs what a real mp3 costs.
Figures: decode and analysis wall and CPU seconds, the real-time factor (track seconds per analysis
second), the process's peak resident memory, and the time to build each latent path for the track.
"""

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from vjgan.render.audio import AnalysisConfig, controls_from_samples, load_audio
from vjgan.render.latent import audio_path, loop_path, walk_path
from vjgan.render.music import synth_music


def timed(function, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="track length, minutes")
    parser.add_argument("--fps", type=float, default=30.0, help="video frame rate the curves are made for")
    parser.add_argument("--z-dim", type=int, default=100, help="latent size")
    args = parser.parse_args()
    seconds = args.minutes * 60

    with tempfile.TemporaryDirectory() as folder:
        track = Path(folder) / "track.mp3"
        # Made in a child process, so this one's peak memory is that of decoding and analysis alone.
        maker = multiprocessing.get_context("spawn").Process(target=synth_music, args=(track, seconds, 128.0, 0))
        maker.start()
        maker.join()
        rss_before = peak_rss_mib()
        (samples, rate), decode_wall, decode_cpu = timed(load_audio, track, AnalysisConfig.sample_rate_hz)
    controls_from_samples(samples[: rate * 2], rate, args.fps)  # warm-up: librosa's numba kernels load
    controls, analyse_wall, analyse_cpu = timed(controls_from_samples, samples, rate, args.fps)
    rss_after = peak_rss_mib()

    print(
        f"track: {args.minutes:g} min mp3, {controls.n_frames} frames at {args.fps:g} fps, "
        f"tempo {controls.tempo_bpm:.2f} bpm (true 128), {len(controls.beat_times_seconds)} beats"
    )
    print(f"decode:   {decode_wall:6.2f} s wall, {decode_cpu:6.2f} s CPU  ({seconds / decode_wall:5.0f}x real time)")
    print(f"analyse:  {analyse_wall:6.2f} s wall, {analyse_cpu:6.2f} s CPU  ({seconds / analyse_wall:5.0f}x real time)")
    print(
        f"peak RSS: {rss_after:.0f} MiB ({rss_after - rss_before:+.0f} MiB over the imports, for decoding and "
        f"analysis; the samples alone are {samples.nbytes / 2**20:.0f} MiB)"
    )
    for name, build in [
        ("loop_path", lambda: loop_path(controls.n_frames, args.z_dim, seed=0)),
        ("walk_path", lambda: walk_path(controls.n_frames, args.z_dim, keyframes=64, seed=0)),
        ("audio_path", lambda: audio_path(controls, args.z_dim, seed=0)),
    ]:
        path, wall, cpu = timed(build)
        print(f"{name:10s}: {wall:6.3f} s wall, {cpu:6.3f} s CPU for {tuple(path.shape)}")


if __name__ == "__main__":
    main()
