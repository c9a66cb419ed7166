"""`vjgan train DATA_DIR/<genre> [DATA_DIR/<genre> ...] --run RUNS_DIR/<name>`: train a DCGAN on one genre's
frame store (or several as one pool); `vjgan train DATA_DIR --runs RUNS_DIR`: a run per genre store."""

import argparse
from pathlib import Path

from rich.table import Table

from vjgan.cli.options import argument_type, from_flags
from vjgan.console import console
from vjgan.device import DEVICES, PRECISIONS
from vjgan.errors import StoreError, VjganError
from vjgan.footage.store import open_stores
from vjgan.model.losses import LOSS_KINDS
from vjgan.model.networks import ModelConfig
from vjgan.sizes import parse_full_size_hw
from vjgan.train.config import BALANCES, DATA_MODES, PRESETS, preset, with_epochs
from vjgan.train.expectations import duration


def register(parser) -> None:
    parser.description = (
        "Train a DCGAN on one genre's frame store, or on several stores of one size as one pool of frames. "
        "The run directory gets config.toml, log.jsonl, checkpoints/, snapshots/ (the fixed noise bank rendered as "
        "training goes), preview.png and loss.png. Re-running the same command resumes; under torchrun it trains "
        "data-parallel. With --runs, DATA_DIR's every genre store trains into a run of its own, one after the other."
    )
    parser.add_argument(
        "stores",
        nargs="*",
        type=str,
        metavar="DATA_DIR/GENRE",
        help="frame store made by vjgan ingest; several train as one; with --runs, the folder of genre stores",
    )
    parser.add_argument(
        "--run",
        "--run-dir",
        dest="run_dir",
        type=Path,
        metavar="RUNS_DIR/NAME",
        help="run directory (created, or resumed); under torchrun write --run-dir (torchrun reads --run as its --run-path)",
    )
    parser.add_argument(
        "--runs",
        dest="runs_dir",
        type=Path,
        metavar="RUNS_DIR",
        help="train a run per genre store of DATA_DIR into RUNS_DIR/<genre>",
    )
    parser.add_argument(
        "--minutes-per-genre",
        type=float,
        metavar="M",
        help="with --runs: each genre's time this session (default: its whole schedule)",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="base settings (default: seed96)")

    schedule = parser.add_argument_group("schedule (in images seen)")
    total = schedule.add_mutually_exclusive_group()
    total.add_argument("--images", dest="images_total", type=int, help="images to train on in all (raise it to train further)")
    total.add_argument(
        "--epochs", type=int, help="the original's form: epochs x images per epoch (default: the snapshot cadence)"
    )
    schedule.add_argument("--images-per-epoch", type=int, help="images per epoch (with --epochs; one snapshot each)")
    schedule.add_argument("--minutes", type=float, help="stop cleanly after this many minutes (resume later)")
    schedule.add_argument("--snapshot-every", dest="snapshot_every_images", type=int, help="images between fixed-noise snapshots")
    schedule.add_argument("--checkpoint-every", dest="checkpoint_every_images", type=int, help="images between checkpoints")
    schedule.add_argument("--log-every", dest="log_every_steps", type=int, help="steps between log records")

    model = parser.add_argument_group("model and optimisation")
    model.add_argument(
        "--size",
        dest="model_size_px",
        type=argument_type(parse_full_size_hw),
        metavar="N|WxH",
        help="frame size the model makes (default: the store's)",
    )
    model.add_argument("--width", dest="model_width", type=int, help="G/D channels at full resolution")
    model.add_argument("--z-dim", dest="model_z_dim", type=int, help="latent vector length")
    model.add_argument("--batch-size", type=int, help="images per step, all ranks together")
    model.add_argument("--lr", type=float, help="Adam learning rate")
    model.add_argument(
        "--loss", choices=LOSS_KINDS, help="bce (the original), hinge (modern) or relativistic (R3GAN's pairing loss, modern2)"
    )
    model.add_argument(
        "--augment",
        help="DiffAugment policy: a comma list of color (or its parts brightness, saturation, contrast), translation, "
        'zoom, cutout, each at a strength after a colon (color:0.5 halves the colour changes; "" = none)',
    )
    model.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None, help="random left-right flips")
    model.add_argument(
        "--balance",
        choices=BALANCES,
        help="frames: every stored frame equally likely (default); sources: every source video equally likely, "
        "then its frames, so one long clip does not drown the short ones",
    )
    model.add_argument(
        "--ema-half-life", dest="ema_half_life_images", type=int, help="images for the EMA generator's memory to halve"
    )
    model.add_argument("--ema-rampup", type=float, help="early half-life as a fraction of images seen (0: off)")
    model.add_argument("--noise-bank", dest="noise_bank_size", type=int, help="latent vectors rendered per snapshot")
    model.add_argument("--seed", type=int, help="seed of every random choice")

    hardware = parser.add_argument_group("hardware")
    hardware.add_argument("--device", choices=DEVICES, default=None)
    hardware.add_argument("--precision", choices=PRECISIONS, default=None)
    hardware.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile G and D")
    hardware.add_argument(
        "--cuda-graph",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="on CUDA, record the whole step once and replay it (much faster for small models; one process)",
    )

    hardware.add_argument(
        "--data",
        choices=DATA_MODES,
        help="frames on the device (memory), read from disk as training goes (stream), or auto: stream when the "
        "store exceeds the data budget (default)",
    )
    hardware.add_argument(
        "--data-budget",
        dest="data_budget_gib",
        type=float,
        metavar="GIB",
        help="with --data auto: GiB of frames to hold in memory before streaming (default: half the free memory)",
    )

    restart = parser.add_mutually_exclusive_group()
    restart.add_argument("--force", action="store_true", help="start an existing run over (e.g. with other settings)")
    restart.add_argument(
        "--resume-from",
        type=Path,
        metavar="CHECKPOINT",
        help="continue from this checkpoint, dropping what came after it; training settings may change (e.g. after a NaN)",
    )
    parser.add_argument("--dry-run", action="store_true", help="one step on random frames, writing nothing")
    parser.set_defaults(run=run)


def resolve_config(args, stores: list[str]):
    """The run's config from the flags, learning from `stores` (none for a dry run)."""
    size_px = args.model_size_px or store_size_px(stores)
    config = preset(args.preset or "seed96", size_px)  # None (a dry run without --size): the preset's own size
    if args.images_per_epoch is not None and args.epochs is None:
        raise VjganError("--images-per-epoch: give --epochs too (the schedule is epochs x images per epoch)")
    if args.epochs is not None:
        config = with_epochs(config, args.epochs, args.images_per_epoch)
    store = stores[0] if len(stores) == 1 else tuple(stores) or None
    return from_flags(config, args, store=store, model_size_px=size_px)


def store_size_px(stores: list[str]) -> tuple[int, int] | None:
    """The frame size of the stores a model learns from, when --size is not given: it makes frames of that shape."""
    if not stores:
        return None
    size_px = open_stores(stores)[0].size_px  # refuses stores of different sizes
    try:
        return ModelConfig(size_px=size_px).size_px
    except VjganError as error:
        raise StoreError(f"{stores[0]}: {error}; ingest again at such a size (e.g. --size 96 --aspect 16:9)") from None


def run(args) -> int:
    from vjgan.train.loop import dry_run, train

    if args.runs_dir is not None:
        return run_genres(args)
    if args.minutes_per_genre is not None:
        raise VjganError("--minutes-per-genre: give --runs RUNS_DIR too (it is each genre's time when training every genre)")
    config = resolve_config(args, [] if args.dry_run else args.stores)
    if args.dry_run:
        result = dry_run(config)
        console.print(
            f"dry run on {result['device']}: d_loss {result['d_loss']:.4f}, g_loss {result['g_loss']:.4f}, "
            f"snapshot {result['snapshot_shape']}",
            markup=False,
        )
        return 0
    if not args.stores or args.run_dir is None:
        raise VjganError("train: give a frame store (DATA_DIR/<genre>) and --run RUNS_DIR/<name> (or --dry-run)")
    result = train(config, args.run_dir, force=args.force, resume_from=args.resume_from)
    if not result.reports:
        return 0
    if result.finished:
        console.print(
            f"{result.run_dir}: trained on {result.images_seen:,} images; newest checkpoint {result.checkpoint}", markup=False
        )
    else:
        console.print(
            f"{result.run_dir}: stopped at the time budget after {result.images_seen:,} of {config.images_total:,} images; "
            "re-run the same command to continue",
            markup=False,
        )
    return 0


def run_genres(args) -> int:
    """`vjgan train DATA_DIR --runs RUNS_DIR`: every genre store's run in turn, then the table."""
    from vjgan.train.genres import train_genres

    if len(args.stores) != 1 or args.run_dir is not None or args.dry_run:
        raise VjganError("train --runs RUNS_DIR: give one DATA_DIR (the folder of genre stores) and no --run or --dry-run")
    results = train_genres(
        Path(args.stores[0]), args.runs_dir, lambda store: resolve_config(args, [str(store)]), args.minutes_per_genre
    )
    table = Table(
        title=f"{args.stores[0]} -> {args.runs_dir}",
        caption="SWD x1e3 @ images seen: the newest `vjgan eval RUNS_DIR/<genre>` measured",
    )
    for name in ("genre", "images seen", "of", "SWD x1e3", "time spent", "time left"):
        table.add_column(name, justify="left" if name == "genre" else "right")
    for result in results:
        if result.error is not None:
            table.add_row(result.genre, f"{result.images_seen:,}", "-", "-", "-", "failed: see above")
            continue
        swd = "-" if result.swd is None else f"{result.swd[1]:.1f} @ {result.swd[0]:,}"
        left = "done" if result.images_seen >= result.images_total else known_duration(result.seconds_left)
        spent = known_duration(result.seconds)
        table.add_row(result.genre, f"{result.images_seen:,}", f"{result.images_total:,}", swd, spent, left)
    console.print(table)
    return 1 if any(result.error is not None for result in results) else 0


def known_duration(seconds: float | None) -> str:
    """A duration as the progress lines write it; "-" when not known."""
    return "-" if seconds is None else duration(seconds)
