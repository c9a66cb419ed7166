"""`vjgan generate RUN [RUN ...] --count N --seconds S` (or `--bpm B --bars K`): many seamless loops in one batched pass,
and a contact sheet."""

from pathlib import Path

from vjgan.cli.options import from_flags
from vjgan.cli.render import add_beat_options, add_output_options, add_run_argument, beat_options, each_run, render_config
from vjgan.console import console
from vjgan.render.clips import GenerateOptions, generate


def register(parser) -> None:
    parser.description = (
        "Render N seamless loops from seeds SEED, SEED+1, ... in one batched pass through the generator, "
        "plus contact_sheet.png of their first frames. Loop k is the clip `vjgan render loop --seed SEED+k` makes. "
        "With --bpm (or --audio) every loop lasts the same whole bars and kicks on the same beats, ready to trigger in time."
    )
    add_run_argument(parser)
    parser.add_argument("--count", type=int, metavar="N", help=f"loops to make (default {GenerateOptions.count})")
    parser.add_argument("--seconds", type=float, help=f"length of each loop (default {GenerateOptions.seconds:g})")
    parser.add_argument(
        "--at-once",
        dest="clips_at_once",
        type=int,
        metavar="K",
        help=f"loops rendered and encoded side by side (default {GenerateOptions.clips_at_once})",
    )
    parser.add_argument("--out", type=Path, metavar="FOLDER", help="folder for the loops (default RUN/clips/loops-FIRST-LAST/)")
    add_beat_options(parser)
    add_output_options(parser, latent=True)
    parser.set_defaults(run=run)


def run(args) -> int:
    config = render_config(args)
    options = from_flags(GenerateOptions(), args, beat=beat_options(args, config))

    def generate_one(run_dir: Path) -> None:
        paths = generate(run_dir, config, options, args.checkpoint, args.out)
        console.print(f"wrote {len(paths)} loops and contact_sheet.png to {paths[0].parent}", markup=False)

    return each_run(args, generate_one)
