"""`vjgan ingest FOOTAGE_DIR --out DATA_DIR`: genre folders of videos into frame stores."""

import argparse
import dataclasses
import time
from pathlib import Path

from rich.progress import TextColumn
from rich.table import Table

from vjgan.console import console, make_progress
from vjgan.footage.geometry import CROP_MODES
from vjgan.footage.ingest import FileOutcome, IngestConfig, IngestListener, IngestReport, Problem, Source, ingest


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="decode genre folders of videos into frame stores (incremental)",
        description="Decode every video in FOOTAGE_DIR/<genre>/ into the frame store DATA_DIR/<genre>/: frames "
        "resampled to --fps by timestamp, scaled and cropped to --size pixels square. Re-running skips videos "
        "already in the store and adds new ones. Files that cannot be used are reported and skipped.",
    )
    parser.add_argument("footage_dir", type=Path, metavar="FOOTAGE_DIR", help="folder of genre folders of videos")
    parser.add_argument("--out", type=Path, required=True, metavar="DATA_DIR", help="folder the genre stores go into")
    parser.add_argument("--size", type=positive_int, metavar="PX", help=f"side of the square frames (default {IngestConfig.size_px})")
    parser.add_argument(
        "--fps", type=non_negative_float, help=f"frames kept per second of footage; 0 keeps every source frame (default {IngestConfig.fps:g})"
    )
    parser.add_argument(
        "--crop", choices=CROP_MODES,
        help=f"center: scale the short side to --size and keep the middle (the original workflow); "
        f"full: squash the whole frame (default {IngestConfig.crop})",
    )  # fmt: skip
    parser.add_argument("--genre", metavar="NAME", help="ingest FOOTAGE_DIR itself, a flat folder of videos, as genre NAME")
    parser.set_defaults(run=run)


def resolve_config(args) -> IngestConfig:
    overrides = {k: v for k, v in {"size_px": args.size, "crop": args.crop}.items() if v is not None}
    if args.fps is not None:
        overrides["fps"] = args.fps or None  # 0: keep every source frame
    return dataclasses.replace(IngestConfig(), **overrides)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of pixels, at least 1")
    return int(text)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give frames per second (0 keeps the source rate)")
    return value


class ProgressListener(IngestListener):
    """Files and frames on a progress bar; problems printed above it as they happen."""

    def __init__(self, progress):
        self.progress = progress
        self.task = None
        self.frames = 0
        self.started_at = time.perf_counter()

    def started(self, sources: list[Source]) -> None:
        self.task = self.progress.add_task("ingesting", total=len(sources), frames=0, rate=0.0)
        self.started_at = time.perf_counter()

    def frames_written(self, count: int) -> None:
        self.frames += count
        rate = self.frames / max(time.perf_counter() - self.started_at, 1e-9)
        self.progress.update(self.task, frames=self.frames, rate=rate)

    def problem(self, problem: Problem) -> None:
        self.progress.console.print(f"problem: {problem.message}", style="yellow", markup=False, soft_wrap=True)

    def file_done(self, outcome: FileOutcome) -> None:
        self.progress.advance(self.task)


def summary_table(report: IngestReport) -> Table:
    table = Table(title="ingest summary (files: added / already stored / failed)")
    table.add_column("genre", no_wrap=True)
    for heading in ("added", "stored", "failed", "+frames", "frames", "s", "frames/s"):
        table.add_column(heading, justify="right", no_wrap=True)
    for g in report.genres:
        table.add_row(
            g.genre, str(g.files_added), str(g.files_skipped), str(g.files_failed), f"{g.frames_added:,}",
            f"{g.store_frames:,}", f"{g.seconds:.1f}", f"{g.frames_per_second:.0f}",
        )  # fmt: skip
    return table


def run(args) -> int:
    config = resolve_config(args)
    progress = make_progress(TextColumn("{task.fields[frames]:,} frames"), TextColumn("{task.fields[rate]:.0f} frames/s"))
    with progress:
        report = ingest(args.footage_dir, args.out, config, genre=args.genre, listener=ProgressListener(progress))
    for g in report.genres:
        if g.leftovers_removed:
            console.print(f"{g.store_path}: removed {len(g.leftovers_removed)} unfinished file(s) of an interrupted run", markup=False)
    console.print(summary_table(report))
    if report.stray_files:
        console.print(
            f"{args.footage_dir}: {len(report.stray_files)} video(s) outside any genre folder were not ingested "
            f"({', '.join(p.name for p in report.stray_files[:3])}{', ...' if len(report.stray_files) > 3 else ''}); "
            "move them into a genre folder, or ingest a flat folder with --genre NAME",
            style="yellow", markup=False, soft_wrap=True,
        )  # fmt: skip
    if report.problems:
        console.print(f"{len(report.problems)} file(s) had problems (listed above)", style="yellow", markup=False)
    if report.nothing_ingested:
        console.print(f"vjgan: error: nothing was ingested from {args.footage_dir}", style="red", markup=False)
        return 1
    return 0
