"""Synth speed: how long `vjgan synth` takes to make the demo's footage.

    .venv/bin/python bench/synth.py                        # defaults: 3 genres x 3 clips x 4 s at 640x360
    .venv/bin/python bench/synth.py --seconds 10 --clips 1 # 3 genres x 10 s

Measures, per genre, the frames rendered and encoded (H.264 through render.video's writer) per wall
second and the CPU seconds per frame (this process and its threads), and writes the `## Synth`
section of bench/RESULTS.md. CPU per frame changes little with other load on the machine; wall time does.
"""

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from results import write_section  # bench/results.py, next to this script

from vjgan.footage.synth import GENRES, SynthConfig, write_synth_footage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="length of each clip")
    parser.add_argument("--clips", type=int, help="clips per genre")
    parser.add_argument("--no-write", action="store_true", help="print the table without updating RESULTS.md")
    args = parser.parse_args()
    overrides = {"seconds": args.seconds, "clips_per_genre": args.clips}
    config = dataclasses.replace(SynthConfig(), **{k: v for k, v in overrides.items() if v is not None})

    rows = ["| genre | clips | frames | wall s | frames/s | CPU ms / frame |", "|---|---:|---:|---:|---:|---:|"]
    total_frames, total_wall, total_cpu = 0, 0.0, 0.0
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as folder:
        for genre in GENRES:
            wall, cpu = time.perf_counter(), time.process_time()
            paths = write_synth_footage(Path(folder), dataclasses.replace(config, genres=(genre,)))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            frames = len(paths) * config.n_frames
            rows.append(f"| {genre} | {len(paths)} | {frames} | {wall:.1f} | {frames / wall:.0f} | {cpu / frames * 1000:.1f} |")
            total_frames, total_wall, total_cpu = total_frames + frames, total_wall + wall, total_cpu + cpu
    rows.append(
        f"| **all** | {len(GENRES) * config.clips_per_genre} | {total_frames} | **{total_wall:.1f}** "
        f"| {total_frames / total_wall:.0f} | {total_cpu / total_frames * 1000:.1f} |"
    )
    width, height = config.frame_size_wh
    lines = [
        f"`bench/synth.py`: {config.clips_per_genre} clips per genre of {config.seconds:g} s at {width}x{height}, "
        f"{config.fps} fps, rendered (numpy + Pillow) and encoded to H.264. Measured {time.strftime('%Y-%m-%d')} on "
        f"{len(os.sched_getaffinity(0))} cores (load average {load} at start"
        + ("; shared with other jobs, so wall times are pessimistic" if float(load.split(",")[0]) > 1.5 else "; otherwise idle")
        + "); CPU per frame counts the encoder's threads too.",
        "",
        *rows,
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section("Synth", lines)


if __name__ == "__main__":
    main()
