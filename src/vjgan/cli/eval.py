"""`vjgan eval RUNS_DIR/<name>`: SWD and diversity of a run's snapshots, as a table and curve PNGs."""

from pathlib import Path

from rich.table import Table

from vjgan.cli.options import from_flags
from vjgan.console import console, make_progress
from vjgan.evaluate import EvalConfig, evaluate_run


def register(parser) -> None:
    parser.description = (
        "Compare each snapshot's fixed-noise frames with the run's frame store: sliced Wasserstein "
        "distance over Laplacian-pyramid patches (lower is better) and diversity (mean pairwise distance; far "
        "below the store's own means mode collapse). Writes eval.json, swd.png and diversity.png into the run."
    )
    parser.add_argument("run_dir", type=Path, metavar="RUNS_DIR/NAME", help="run directory made by vjgan train")
    parser.add_argument("--every", dest="every_nth_snapshot", type=int, help="evaluate every N-th snapshot (the newest always)")
    parser.add_argument(
        "--samples", dest="store_frames", type=int, help="frames drawn from the frame store as the real reference"
    )
    stores = parser.add_mutually_exclusive_group()
    stores.add_argument(
        "--store", type=Path, metavar="DATA_DIR/GENRE", help="any frame store to compare with (default: the run's)"
    )
    stores.add_argument(
        "--data",
        type=Path,
        metavar="DATA_DIR/GENRE",
        help="the run's own store at another path (it moved): checked by its manifest, not its path",
    )
    parser.add_argument("--seed", type=int, help="seed of the store sample, patch positions and projections")
    parser.set_defaults(run=run)


def run(args) -> int:
    config = from_flags(EvalConfig(), args)
    store = None
    if args.store is not None:
        from vjgan.footage.store import FrameStore

        store = FrameStore.open(args.store)
    with make_progress() as progress:
        task = progress.add_task("evaluating snapshots", total=None)
        report = evaluate_run(
            args.run_dir,
            config,
            store,
            on_snapshot=lambda done, total: progress.update(task, completed=done, total=total),
            data=args.data,
        )
    table = Table(
        title=f"{report.run_dir.name} vs {report.store}", caption=f"store frames' own diversity: {report.store_diversity:.4f}"
    )
    table.add_column("snapshot", justify="right")
    table.add_column("images seen", justify="right")
    table.add_column("SWD x1e3", justify="right")
    for level_px in report.levels_px:
        table.add_column(f"{level_px} px", justify="right")
    table.add_column("diversity", justify="right")
    for row in report.snapshots:
        levels = [f"{value:.1f}" for value in row.swd_per_level_x1e3]
        table.add_row(str(row.index), f"{row.images_seen:,}", f"{row.swd_x1e3:.1f}", *levels, f"{row.diversity:.4f}")
    console.print(table)
    for path in (report.json_path, report.swd_png, report.diversity_png):
        console.print(f"wrote {path}", markup=False, soft_wrap=True)
    return 0
