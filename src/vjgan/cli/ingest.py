"""`vjgan ingest FOOTAGE_DIR --out DATA_DIR`: genre folders of videos into frame stores."""

import argparse
import time
from pathlib import Path

from rich.progress import TextColumn
from rich.table import Table
from rich.text import Text

from vjgan.cli import print_error
from vjgan.cli.options import argument_type, from_flags
from vjgan.console import console, make_progress, printable
from vjgan.footage.geometry import CROP_MODES
from vjgan.footage.ingest import FileOutcome, IngestConfig, IngestListener, IngestReport, Problem, Source, ingest
from vjgan.sizes import format_size, parse_aspect_wh, parse_size_hw, resolve_size_hw


def register(parser) -> None:
    parser.description = (
        "Decode every video in FOOTAGE_DIR/<genre>/ into the frame store DATA_DIR/<genre>/: frames "
        "resampled to --fps by timestamp, scaled and cropped to --size (square, or --aspect W:H). Re-running skips videos "
        "already in the store and adds new ones. Files that cannot be used are reported and skipped."
    )
    parser.add_argument("footage_dir", type=Path, metavar="FOOTAGE_DIR", help="folder of genre folders of videos")
    parser.add_argument("--out", type=Path, required=True, metavar="DATA_DIR", help="folder the genre stores go into")
    parser.add_argument(
        "--size",
        type=argument_type(parse_size_hw),
        metavar="H|WxH",
        help="frame height in pixels (the width follows --aspect), or width x height, e.g. 176x96 "
        f"(default {format_size(IngestConfig.size_px)})",
    )
    parser.add_argument(
        "--aspect",
        type=argument_type(parse_aspect_wh),
        metavar="W:H",
        help="frame shape, e.g. 16:9, 4:3 or 9:16 (portrait); the width is rounded to a multiple of 16, "
        "the model's size step: --size 96 --aspect 16:9 makes 176x96 frames (default 1:1)",
    )
    parser.add_argument(
        "--fps",
        type=frames_per_second,
        help=f"frames kept per second of footage; 0 keeps every source frame (default {IngestConfig.fps:g})",
    )
    parser.add_argument(
        "--crop",
        choices=CROP_MODES,
        help=f"center: scale to cover --size and keep the middle (the original workflow); "
        f"full: squash the whole frame (default {IngestConfig.crop})",
    )
    parser.add_argument(
        "--dedup",
        type=float,
        metavar="THRESHOLD",
        help="drop frames closer than THRESHOLD to the last kept frame of their video (RMS difference of 16x16 "
        "thumbnails, 0-1): 0.003 drops repeats and holds, 0.01 slow drifts too; reported as kept N of M "
        f"(default {IngestConfig.dedup:g}: keep every frame)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="decode N videos at once, each in a process of its own (up to one per CPU core); the store is the same "
        f"as with one (default {IngestConfig.jobs})",
    )
    parser.add_argument("--genre", metavar="NAME", help="ingest FOOTAGE_DIR itself, a flat folder of videos, as genre NAME")
    parser.set_defaults(run=run)


def resolve_config(args) -> IngestConfig:
    size = args.size or (IngestConfig.size_px[0], None)  # a height alone takes its width from --aspect
    return from_flags(IngestConfig(), args, size_px=resolve_size_hw(size, args.aspect))


def frames_per_second(text: str) -> float:
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
        if outcome.frames_decoded is not None:
            self.progress.console.print(
                f"{printable(str(outcome.source.path))}: kept {outcome.frames:,} of {outcome.frames_decoded:,} frames",
                markup=False,
                soft_wrap=True,
            )
        self.progress.advance(self.task)


def summary_table(report: IngestReport, dedup: bool = False) -> Table:
    """One row per genre; with `dedup`, "+frames" reads "kept of decoded" (fits 80 columns either way)."""
    kept_note = "; +frames: kept of decoded" if dedup else ""
    table = Table(title=f"ingest summary (files: added / already stored / failed{kept_note})")
    table.add_column("genre", no_wrap=True)
    for heading in ("added", "stored", "failed", "+frames", "frames", "s", "frames/s"):
        table.add_column(heading, justify="right", no_wrap=True)
    for g in report.genres:
        added = f"{g.frames_added:,} of {g.frames_decoded:,}" if dedup else f"{g.frames_added:,}"
        table.add_row(
            Text(printable(g.genre)),
            str(g.files_added),
            str(g.files_skipped),
            str(g.files_failed),
            added,
            f"{g.store_frames:,}",
            f"{g.seconds:.1f}",
            f"{g.frames_per_second:.0f}",
        )
    return table


def run(args) -> int:
    config = resolve_config(args)
    height, width = config.size_px
    console.print(f"frames of {width}x{height} px (width x height), {config.crop} crop", markup=False)
    progress = make_progress(TextColumn("{task.fields[frames]:,} frames"), TextColumn("{task.fields[rate]:.0f} frames/s"))
    with progress:
        report = ingest(args.footage_dir, args.out, config, genre=args.genre, listener=ProgressListener(progress))
    for g in report.genres:
        if g.leftovers_removed:
            console.print(
                f"{printable(str(g.store_path))}: removed {len(g.leftovers_removed)} unfinished file(s) of an interrupted run",
                markup=False,
            )
    console.print(summary_table(report, dedup=config.dedup > 0))
    if report.stray_files:
        console.print(
            f"{printable(str(args.footage_dir))}: {len(report.stray_files)} video(s) outside any genre folder were not ingested "
            f"({', '.join(printable(p.name) for p in report.stray_files[:3])}{', ...' if len(report.stray_files) > 3 else ''}); "
            "move them into a genre folder, or ingest a flat folder with --genre NAME",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )
    if report.problems:
        console.print(f"{len(report.problems)} file(s) had problems (listed above)", style="yellow", markup=False)
    if report.nothing_ingested:
        print_error(f"nothing was ingested from {args.footage_dir}")
        return 1
    return 0
