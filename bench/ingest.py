"""Ingest speed and bytes written: vjgan ingest against the original workflow and bare decoding.

    .venv/bin/python bench/ingest.py                       # /work/shared/footage
    .venv/bin/python bench/ingest.py --footage my/clips    # any folder of genre folders
    .venv/bin/python bench/ingest.py --synth               # vjgan synth footage made for the run

Side by side on the same videos, in one run:
  (a) vjgan ingest: PyAV decode -> fps resampling -> scale + centre crop -> one .npy shard per video;
  (b) the original workflow: `ffmpeg -i f -an -r 30 dir/%05d.png` per video, then Pillow resizes each
      PNG to height 96, crops the centre square and saves it as PNG again;
  (c) `ffmpeg -i f -an -f null -`: decoding alone, with ffmpeg's default threads (the ceiling);
  (d) PyAV decoding alone, in this process with FFmpeg's automatic threads: the same ceiling without
      starting an ffmpeg process per video (~50 ms each, which short clips notice).
Frames/s count output frames per wall second; CPU seconds include child processes. The table is
printed and replaces the `## Ingest` section of bench/RESULTS.md. Needs the ffmpeg command line
program (only this benchmark does): `apt-get update && apt-get install -y ffmpeg` on Debian/Ubuntu.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image
from results import cpu_seconds, write_section  # bench/results.py, next to this script

from vjgan.footage.ingest import IngestConfig, ingest
from vjgan.footage.synth import SynthConfig, write_synth_footage

SECTION = "Ingest"
TARGET_SPEEDUP = 8.0  # vjgan frames/s over the original workflow's
TARGET_CEILING_SHARE = 0.6  # vjgan frames/s over bare decoding's


@dataclass
class Measured:
    name: str
    frames: int
    wall_seconds: float
    cpu_seconds: float
    bytes_written: int
    files_written: int

    @property
    def fps(self) -> float:
        return self.frames / self.wall_seconds


def tree_size(folder: Path) -> tuple[int, int]:
    """(bytes, files) under `folder`."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def measure(label: str, work, out_names: list[str], work_dir: Path, repeats: int) -> Measured:
    """Run `work(out_dirs) -> frames` `repeats` times, each into fresh `out_dirs` (ingest would skip
    what it already has), and count what it left there; wall and CPU seconds are the medians."""
    walls, cpus = [], []
    for attempt in range(repeats):
        out_dirs = [work_dir / f"{name}-{attempt}" for name in out_names]
        wall, cpu = time.perf_counter(), cpu_seconds()
        frames = work(*out_dirs)
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu_seconds() - cpu)
        sizes = [tree_size(d) for d in out_dirs if d.exists()]
        for folder in out_dirs:
            shutil.rmtree(folder, ignore_errors=True)
    return Measured(
        label, frames, statistics.median(walls), statistics.median(cpus), sum(s[0] for s in sizes), sum(s[1] for s in sizes)
    )


def run_vjgan(footage: Path, data: Path, config: IngestConfig) -> int:
    ingest(footage, data, config)
    return sum(shard["frames"] for store in manifests(data) for shard in store["shards"])


def manifests(data: Path) -> list[dict]:
    """The manifest of every frame store under `data` (format in docs/interfaces.md)."""
    return [json.loads(path.read_text()) for path in sorted(data.glob("*/manifest.json"))]


def run_original(videos: list[Path], footage: Path, frames_dir: Path, resized_dir: Path, size_px: int, fps: float) -> int:
    """The workflow vjgan replaces: PNGs at full size on disk, then each resized and cropped with Pillow."""
    frames = 0
    for video in videos:
        relative = video.relative_to(footage).with_suffix("")
        full, small = frames_dir / relative, resized_dir / relative
        full.mkdir(parents=True)
        small.mkdir(parents=True)
        ffmpeg(["-i", str(video), "-an", "-r", f"{fps:g}", str(full / "%05d.png")])
        for png in sorted(full.glob("*.png")):
            with Image.open(png) as image:
                width = round(image.width * size_px / image.height)
                resized = image.resize((width, size_px))
                left = (width - size_px) // 2
                resized.crop((left, 0, left + size_px, size_px)).save(small / png.name)
            frames += 1
    return frames


def run_decode_ceiling(videos: list[Path]) -> int:
    """Decode every video with ffmpeg and throw the frames away; returns frames decoded."""
    frames = 0
    for video in videos:
        log = ffmpeg(["-i", str(video), "-an", "-f", "null", "-"])
        frames += int(re.findall(r"frame=\s*(\d+)", log)[-1])
    return frames


def run_pyav_decode(videos: list[Path]) -> int:
    """Decode every video with PyAV, threaded as the ffmpeg program is, and throw the frames away."""
    frames = 0
    for video in videos:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames += sum(1 for _ in container.decode(stream))
    return frames


def ffmpeg(arguments: list[str]) -> str:
    """Run ffmpeg quietly apart from its final statistics; returns its log (stderr)."""
    done = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"ffmpeg {' '.join(arguments)} failed:\n{done.stderr[-2000:]}")
    return done.stderr


def machine_description() -> str:
    cpuinfo = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        key, _, value = line.partition(":")
        cpuinfo.setdefault(key.strip(), value.strip())
    model = cpuinfo.get("model name", platform.processor() or "unknown CPU")
    if "cpu family" in cpuinfo:  # virtual machines often show only the brand
        model += f" (family {cpuinfo['cpu family']}, model {cpuinfo.get('model', '?')})"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split(" Copyright")[0]
    return (
        f"{model}; {usable} usable cores of {os.cpu_count()}; load average at start {load} (1, 5, 15 min); "
        f"Python {platform.python_version()}, PyAV {av.__version__}; {ffmpeg_version}"
    )


def results_table(results: list[Measured], expected_store_bytes: int) -> list[str]:
    vjgan, original, ceiling, in_process = results
    rows = [
        "| method | frames | wall s | frames/s | CPU s | files written | bytes written | bytes / frame |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        rows.append(
            f"| {m.name} | {m.frames} | {m.wall_seconds:.2f} | {m.fps:.0f} | {m.cpu_seconds:.2f} | {m.files_written} "
            f"| {m.bytes_written:,} | {m.bytes_written / max(m.frames, 1):,.0f} |"
        )
    speedup, share = vjgan.fps / original.fps, vjgan.fps / ceiling.fps
    extra = vjgan.bytes_written - expected_store_bytes
    rows += [
        "",
        f"- vjgan vs original workflow: **{speedup:.1f}x** frames/s (target >= {TARGET_SPEEDUP:g}x: "
        f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}); "
        f"CPU seconds {original.cpu_seconds / max(vjgan.cpu_seconds, 1e-9):.1f}x fewer",
        f"- vjgan vs bare decoding: **{share:.0%}** of ffmpeg's frames/s (target >= {TARGET_CEILING_SHARE:.0%}: "
        f"{'met' if share >= TARGET_CEILING_SHARE else 'MISSED'}); {vjgan.fps / in_process.fps:.0%} of in-process "
        "PyAV decoding's, which starts no process per video",
        f"- bytes written by vjgan: {vjgan.bytes_written:,} = the frames' pixels ({expected_store_bytes:,}) "
        f"+ {extra:,} for manifest and .npy headers; no intermediate files "
        f"({'met' if 0 <= extra < 4096 + 256 * vjgan.files_written else 'MISSED'}). The original workflow wrote "
        f"{original.bytes_written / max(vjgan.bytes_written, 1):.0f}x as many bytes.",
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, default=Path("/work/shared/footage"), help="folder of genre folders of videos")
    parser.add_argument("--synth", action="store_true", help="bench on fresh `vjgan synth` footage instead (defaults)")
    parser.add_argument("--work-dir", type=Path, help="where outputs go (default: a temporary folder, removed after)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each method; the median is reported")
    parser.add_argument("--no-write", action="store_true", help="print the table without updating RESULTS.md")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit(
            "ffmpeg (the command line program) is not on PATH; this benchmark runs it as the original workflow "
            "and the decoding ceiling. Install it: apt-get update && apt-get install -y ffmpeg (Debian/Ubuntu), "
            "brew install ffmpeg (macOS)."
        )
    machine = machine_description()

    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        work = Path(work)
        footage = args.footage
        if args.synth:
            footage = work / "footage"
            write_synth_footage(footage, SynthConfig())
        # An untimed ingest first: it loads what vjgan imports lazily, puts the sources in the page
        # cache for every method, and its manifests name the videos ingest took, for the others.
        config = IngestConfig()  # the original workflow makes the same: centre crop, 96 px, 30 fps
        ingest(footage, work / "warm-up", config)
        stores = manifests(work / "warm-up")
        videos = [footage / store["genre"] / shard["source"] for store in stores for shard in store["shards"]]
        if not videos:
            sys.exit(f"{footage}: vjgan ingest found no usable videos (expected {footage}/<genre>/*.mp4)")
        source = f"{len(videos)} videos in {len(stores)} genre folders of {footage}"
        print(f"benchmarking ingest on {source}\n{machine}", flush=True)

        vjgan = measure("(a) vjgan ingest", lambda data: run_vjgan(footage, data, config), ["data"], work, args.repeats)
        original = measure(
            "(b) original: ffmpeg -> PNG, Pillow resize + crop -> PNG",
            lambda full, small: run_original(videos, footage, full, small, config.size_px, config.fps),
            ["png", "png96"],
            work,
            args.repeats,
        )
        ceiling = measure("(c) ffmpeg -f null (decode only)", lambda: run_decode_ceiling(videos), [], work, args.repeats)
        in_process = measure("(d) PyAV decode only, in process", lambda: run_pyav_decode(videos), [], work, args.repeats)
    expected_store_bytes = vjgan.frames * config.size_px**2 * 3
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} by `bench/ingest.py` on {source}, to {config.size_px}x{config.size_px} "
        f"at {config.fps:g} fps, {config.crop} crop; median of {args.repeats} runs of each method.",
        "",
        f"Machine: {machine}. The methods ran one after another, each on all cores; "
        + (
            "the machine was shared with other jobs while measuring (see the load average), so wall figures are "
            "pessimistic and noisy; CPU seconds are less sensitive to the load. "
            if os.getloadavg()[0] > 1.5
            else "the machine was otherwise idle. "
        )
        + "Files written by vjgan include one empty lock file per store.",
        "",
        *results_table([vjgan, original, ceiling, in_process], expected_store_bytes),
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section(SECTION, lines)


if __name__ == "__main__":
    main()
