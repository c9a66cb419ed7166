"""`vjgan demo [--out DIR] [--minutes M]`: the whole path on procedural footage, in minutes."""

from pathlib import Path

from vjgan.cli.options import from_flags
from vjgan.console import console
from vjgan.demo import PROFILES, DemoConfig, DemoResult, next_commands, run_demo
from vjgan.device import DEVICES

DEFAULTS = DemoConfig()


def register(parser) -> None:
    parser.description = (
        "Make procedural VJ footage in three genres, ingest it, train one GAN per genre within the time "
        "budget, render a training video, a seamless loop and an audio-reactive clip per genre, and index it all "
        "(contact sheet, curves, README.txt). Re-running reuses what is done and resumes what is not."
    )
    parser.add_argument(
        "--out",
        dest="out_dir",
        type=Path,
        metavar="DIR",
        help=f"folder for everything the demo makes (default {DEFAULTS.out_dir})",
    )
    parser.add_argument(
        "--minutes",
        dest="minutes_total",
        type=float,
        metavar="M",
        help=f"training minutes, all genres together (default {PROFILES['cpu'].minutes_total:g}; "
        f"--smoke {PROFILES['smoke'].minutes_total:g})",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        help=f"where to train and render; CUDA trains the full seed96 model (default {DEFAULTS.device})",
    )
    parser.add_argument(
        "--smoke",
        action="store_const",
        const="smoke",
        dest="profile",
        help="tiny footage, model and clips: checks an installation end to end in well under a minute",
    )
    parser.set_defaults(run=run)


def run(args) -> int:
    result = run_demo(from_flags(DEFAULTS, args))
    print_summary(result)
    return 0


def print_summary(result: DemoResult) -> None:
    paths = result.paths
    console.print(f"\nvjgan demo: made in {paths.root} (every file is listed in {paths.readme})", style="bold", markup=False)
    for genre, made in result.clips.items():
        console.print(f"  {genre}: {', '.join(str(path) for path in made.values())}", markup=False, soft_wrap=True)
    console.print(f"  index: {paths.contact_sheet}, {paths.curves}", markup=False, soft_wrap=True)
    times = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.stage_seconds.items())
    reused = f"; reused {len(result.reused)} things an earlier run had made" if result.reused else ""
    console.print(f"took {result.seconds / 60:.1f} minutes ({times}){reused}", markup=False, soft_wrap=True)
    console.print("\nNext, with your own footage (one folder of videos per genre):", markup=False)
    for command in next_commands(result.profile):
        console.print(f"  {command}", markup=False, soft_wrap=True)
