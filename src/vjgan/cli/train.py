"""`vjgan train DATA_DIR/<genre> --run RUNS_DIR/<name>`: train a DCGAN on one genre's frame store."""

import argparse
from pathlib import Path

from vjgan.console import console
from vjgan.errors import StoreError, VjganError
from vjgan.footage.store import FrameStore
from vjgan.model.networks import ModelConfig
from vjgan.train.config import BALANCES, PRESETS, preset, with_epochs, with_overrides


def register(parser) -> None:
    parser.description = (
        "Train a DCGAN on one genre's frame store. The run directory gets config.toml, log.jsonl, "
        "checkpoints/, snapshots/ (the fixed noise bank rendered as training goes), preview.png and loss.png. "
        "Re-running the same command resumes; under torchrun it trains data-parallel."
    )
    parser.add_argument("store", nargs="?", type=Path, metavar="DATA_DIR/GENRE", help="frame store made by vjgan ingest")
    parser.add_argument(
        "--run", "--run-dir", dest="run_dir", type=Path, metavar="RUNS_DIR/NAME",
        help="run directory (created, or resumed); under torchrun write --run-dir (torchrun reads --run as its --run-path)",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="base settings (default: seed96)")

    schedule = parser.add_argument_group("schedule (in images seen)")
    total = schedule.add_mutually_exclusive_group()
    total.add_argument("--images", type=int, help="images to train on in all (raise it to train further)")
    total.add_argument("--epochs", type=int, help="the original's form: epochs x images per epoch (default: the snapshot cadence)")
    schedule.add_argument("--images-per-epoch", type=int, help="images per epoch (with --epochs; one snapshot each)")
    schedule.add_argument("--minutes", type=float, help="stop cleanly after this many minutes (resume later)")
    schedule.add_argument("--snapshot-every", type=int, help="images between fixed-noise snapshots")
    schedule.add_argument("--checkpoint-every", type=int, help="images between checkpoints")
    schedule.add_argument("--log-every", type=int, help="steps between log records")

    model = parser.add_argument_group("model and optimisation")
    model.add_argument("--size", type=parse_size, metavar="N|WxH", help="frame size the model makes (default: the store's)")
    model.add_argument("--width", type=int, help="G/D channels at full resolution")
    model.add_argument("--z-dim", type=int, help="latent vector length")
    model.add_argument("--batch-size", type=int, help="images per step, all ranks together")
    model.add_argument("--lr", type=float, help="Adam learning rate")
    model.add_argument("--loss", help="bce or hinge")
    model.add_argument("--augment", help='DiffAugment policy, e.g. "color,translation,cutout" ("" = none)')
    model.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None, help="random left-right flips")
    model.add_argument(
        "--balance", choices=BALANCES,
        help="frames: every stored frame equally likely (default); sources: every source video equally likely, "
        "then its frames, so one long clip does not drown the short ones",
    )  # fmt: skip
    model.add_argument("--ema-half-life", type=int, help="images for the EMA generator's memory to halve")
    model.add_argument("--ema-rampup", type=float, help="early half-life as a fraction of images seen (0: off)")
    model.add_argument("--noise-bank", type=int, help="latent vectors rendered per snapshot")
    model.add_argument("--seed", type=int, help="seed of every random choice")

    hardware = parser.add_argument_group("hardware")
    hardware.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    hardware.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None)
    hardware.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile G and D")
    hardware.add_argument(
        "--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
        help="on CUDA, record the whole step once and replay it (much faster for small models; one process)",
    )  # fmt: skip

    restart = parser.add_mutually_exclusive_group()
    restart.add_argument("--force", action="store_true", help="start an existing run over (e.g. with other settings)")
    restart.add_argument(
        "--resume-from", type=Path, metavar="CHECKPOINT",
        help="continue from this checkpoint, dropping what came after it; training settings may change (e.g. after a NaN)",
    )
    parser.add_argument("--dry-run", action="store_true", help="one step on random frames, writing nothing")
    parser.set_defaults(run=run)


def parse_size(text: str) -> tuple[int, int]:
    """"96" -> (96, 96); "128x96" (width x height) -> (96, 128) as (height, width)."""
    try:
        if "x" in text:
            width, height = (int(side) for side in text.lower().split("x"))
            return (height, width)
        return (int(text), int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give N (N x N) or WxH in pixels, e.g. 176x96 for 176 wide, 96 high") from None


def resolve_config(args):
    config = preset(args.preset or "seed96")
    if args.images_per_epoch is not None and args.epochs is None:
        raise VjganError("--images-per-epoch: give --epochs too (the schedule is epochs x images per epoch)")
    if args.epochs is not None:
        config = with_epochs(config, args.epochs, args.images_per_epoch)
    return with_overrides(
        config,
        store=str(args.store) if args.store is not None else None,
        images_total=args.images,
        minutes=args.minutes,
        snapshot_every_images=args.snapshot_every,
        checkpoint_every_images=args.checkpoint_every,
        log_every_steps=args.log_every,
        batch_size=args.batch_size,
        lr=args.lr,
        loss=args.loss,
        augment=args.augment,
        flip=args.flip,
        balance=args.balance,
        ema_half_life_images=args.ema_half_life,
        ema_rampup=args.ema_rampup,
        noise_bank_size=args.noise_bank,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        compile=args.compile,
        cuda_graph=args.cuda_graph,
        model_size_px=model_size_px(args),
        model_width=args.width,
        model_z_dim=args.z_dim,
    )


def model_size_px(args) -> tuple[int, int] | None:
    """--size, else the store's frame size: a model makes frames the shape of those it learns from."""
    if args.size is not None or args.store is None:
        return args.size
    size_px = FrameStore.open(args.store).size_px
    try:
        return ModelConfig(size_px=size_px).size_px
    except VjganError as error:
        raise StoreError(f"{args.store}: {error}; ingest again at such a size (e.g. --size 96 --aspect 16:9)") from None


def run(args) -> int:
    from vjgan.train.loop import dry_run, train

    config = resolve_config(args)
    if args.dry_run:
        result = dry_run(config)
        console.print(
            f"dry run on {result['device']}: d_loss {result['d_loss']:.4f}, g_loss {result['g_loss']:.4f}, "
            f"snapshot {result['snapshot_shape']}",
            markup=False,
        )
        return 0
    if args.store is None or args.run_dir is None:
        raise VjganError("train: give a frame store (DATA_DIR/<genre>) and --run RUNS_DIR/<name> (or --dry-run)")
    result = train(config, args.run_dir, force=args.force, resume_from=args.resume_from)
    if result.finished:
        console.print(f"{result.run_dir}: trained on {result.images_seen:,} images; newest checkpoint {result.checkpoint}", markup=False)
    else:
        console.print(
            f"{result.run_dir}: stopped at the time budget after {result.images_seen:,} of {config.images_total:,} images; "
            "re-run the same command to continue",
            markup=False,
        )
    return 0
