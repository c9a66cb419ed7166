"""`vjgan eval RUNS_DIR/<name> [...]`: SWD and diversity of runs' snapshots, as tables, curve PNGs and a plateau verdict."""

from pathlib import Path

from rich.table import Table

from vjgan.cli import print_error
from vjgan.cli.options import from_flags
from vjgan.console import console, make_progress
from vjgan.errors import RunError, VjganError
from vjgan.evaluate import EvalConfig, EvalReport, evaluate_run
from vjgan.plateau import plateau_summary


def register(parser) -> None:
    parser.description = (
        "Compare each snapshot's fixed-noise frames with the run's frame store: sliced Wasserstein "
        "distance over Laplacian-pyramid patches (lower is better) and diversity (mean pairwise distance; far "
        "below the store's own means mode collapse), and say whether SWD has plateaued (more training will not "
        "sharpen it) or is still falling. Writes eval.json, swd.png and diversity.png into each run. "
        "Several runs (`vjgan eval runs/*`) are summed up one row each."
    )
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUNS_DIR/NAME", help="run directories made by vjgan train")
    parser.add_argument("--every", dest="every_nth_snapshot", type=int, help="evaluate every N-th snapshot (the newest always)")
    parser.add_argument(
        "--samples", dest="store_frames", type=int, help="frames drawn from the frame store as the real reference"
    )
    stores = parser.add_mutually_exclusive_group()
    stores.add_argument(
        "--store", type=Path, metavar="DATA_DIR/GENRE", help="any frame store to compare with (default: each run's)"
    )
    stores.add_argument(
        "--data",
        type=Path,
        metavar="DATA_DIR/GENRE",
        help="the run's own store at another path (it moved): checked by its manifest, not its path; one run only",
    )
    parser.add_argument("--seed", type=int, help="seed of the store sample, patch positions and projections")
    parser.set_defaults(run=run)


def run(args) -> int:
    config = from_flags(EvalConfig(), args)
    if args.data is not None and len(args.run_dirs) > 1:
        raise RunError(f"--data {args.data}: names one run's moved store; give it with that one run")
    store = None
    if args.store is not None:
        from vjgan.footage.store import FrameStore

        store = FrameStore.open(args.store)
    if len(args.run_dirs) == 1:
        report = evaluate_with_progress(args.run_dirs[0], config, store, args.data)
        print_snapshots(report)
        console.print(report.plateau_line, markup=False, soft_wrap=True)
        return 0
    reports, failed = [], 0
    for run_dir in args.run_dirs:
        try:
            reports.append(evaluate_with_progress(run_dir, config, store, None))
        except VjganError as error:  # one bad run (a stray file the glob took in) does not stop the others
            print_error(error)
            failed += 1
    if reports:
        print_runs(reports)
    return 1 if failed else 0


def evaluate_with_progress(run_dir: Path, config: EvalConfig, store, data: Path | None) -> EvalReport:
    with make_progress() as progress:
        task = progress.add_task(f"evaluating {run_dir.name}", total=None)
        return evaluate_run(
            run_dir, config, store, on_snapshot=lambda done, total: progress.update(task, completed=done, total=total), data=data
        )


def print_snapshots(report: EvalReport) -> None:
    """One run: a row per evaluated snapshot, then the files written."""
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


def print_runs(reports: list[EvalReport]) -> None:
    """Several runs: a row per run (its newest snapshot, its best, the plateau verdict); each run's files as for one."""
    table = Table(title="runs vs their frame stores", caption="each run's eval.json, swd.png and diversity.png written")
    table.add_column("run")
    for name in ("images", "SWD x1e3", "best (at)", "diversity (store)"):
        table.add_column(name, justify="right")
    table.add_column("SWD trend")
    for report in reports:
        newest = report.snapshots[-1]
        plateau = report.plateau
        table.add_row(
            report.run_dir.name,
            f"{newest.images_seen:,}",
            f"{newest.swd_x1e3:.1f}",
            f"{plateau.best_swd_x1e3:.1f} ({plateau.best_images_seen:,})",
            f"{newest.diversity:.4f} ({report.store_diversity:.4f})",
            plateau_summary(plateau),
        )
    console.print(table)
